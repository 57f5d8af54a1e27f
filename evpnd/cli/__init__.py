"""The two programs: `evpnd` (daemon_main.py, the daemon) and `evpnctl` (evpnctl.py, the client
of its control socket, with its table formatting in tables.py)."""
