"""The version both programs print with --version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import evpnd


def package_version() -> str:
    """The installed distribution's version; evpnd.__version__ when run from a bare checkout."""
    try:
        return version("evpnd")
    except PackageNotFoundError:
        return evpnd.__version__
