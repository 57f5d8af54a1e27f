"""Code that runs inside ExaBGP's process tree, not in evpnd's.

ExaBGP is started as `python -m evpnd.bgp.exabgp.extension server CONF` (extension.py patches
ExaBGP 5.0.15 and registers evpnd's commands, whose text grammar is commands.py), and it runs
`python -I -S .../evpnd/bgp/exabgp/relay.py SOCKET` as its API process (relay.py joins its
pipes to evpnd's unix socket; a script with the standard library only, so it starts fast).
Nothing in evpnd's own process imports extension or relay; commands.py
is pure and also used by tests and the speaker's text encoder.
"""
