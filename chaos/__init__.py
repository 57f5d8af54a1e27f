"""The chaos suite (`make chaos`): faults injected into a running evpnd, each measured as
entries lost, entries stale and time to recover. See chaos/__main__.py."""
