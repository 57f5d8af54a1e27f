"""Published JSON schemas of the control API's replies (docs/schema/).

`python -m evpnd.api.schema [DIR]` rewrites them from the pydantic models; a unit test fails
when the files in the repository differ from what the models produce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from evpnd.api.models import REPLIES

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"


def file_name(cmd: str) -> str:
    return cmd.replace(" ", "-") + ".json"


def render(cmd: str) -> str:
    schema = REPLIES[cmd].model_json_schema(mode="serialization")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"evpnctl {cmd} --json (data of the control API's reply to {cmd!r})",
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def expected() -> dict[str, str]:
    return {file_name(cmd): render(cmd) for cmd in REPLIES}


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR
    for path in write(target):
        print(path)
