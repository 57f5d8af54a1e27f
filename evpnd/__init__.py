"""evpnd: an EVPN/BGP control-plane daemon for Linux."""

__version__ = "0.1.0"
