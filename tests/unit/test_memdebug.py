"""The memory report (evpnd.memdebug): off unless asked for; when asked, RSS, objects by type,
the largest allocation sites and what holds an object of a named type."""

from __future__ import annotations

import tracemalloc

from evpnd import memdebug


class Held:
    pass


def test_off_unless_the_variable_is_set(monkeypatch):
    monkeypatch.delenv(memdebug.ENV, raising=False)
    memdebug.start()
    assert memdebug.requested() is None and not tracemalloc.is_tracing()


def test_report_names_sizes_types_sites_and_holders(monkeypatch, tmp_path):
    monkeypatch.setenv(memdebug.ENV, str(tmp_path / "mem.txt"))
    monkeypatch.setenv(memdebug.ENV_FRAMES, "3")
    monkeypatch.setenv(memdebug.ENV_HOLDERS, "Held")
    memdebug.start()
    try:
        keep = {"holder-of-held": [Held() for _ in range(3)]}
        blob = [bytearray(64) for _ in range(2000)]  # an allocation site big enough to list
        memdebug.write_report(tmp_path / "mem.txt")
        text = (tmp_path / "mem.txt").read_text()
    finally:
        tracemalloc.stop()
    assert "VmRSS:" in text and "Rss:" in text
    assert "-- gc-tracked objects by type" in text
    assert "what holds one Held" in text and "holder-of-held" in text
    assert "test_memdebug.py" in text  # the bytearrays' line among the largest sites
    assert "-- gc.collect():" in text and "-- pymalloc" in text
    assert keep and blob
