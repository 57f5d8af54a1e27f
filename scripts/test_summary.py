"""One closing line for the whole suite (host tests + the full-kernel tier), from their JUnit XML.

python scripts/test_summary.py DIR      prints 'make test: N passed, N failed, N skipped'
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main() -> int:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    files = sorted(Path(sys.argv[1]).glob("*.xml"))
    for path in files:
        root = ET.parse(path).getroot()
        for suite in [root] if root.tag == "testsuite" else list(root):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    names = ", ".join(p.stem for p in files)
    print(f"make test tiers: {names}")
    print(f"make test: {passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if failed or not files or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
