"""evpnd: an EVPN/BGP control-plane daemon for Linux."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The installed distribution's version (pyproject.toml's [project] version, via the wheel or
    # the editable install), so `evpnd --version` can never disagree with `pip show evpnd`.
    __version__ = version("evpnd")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
