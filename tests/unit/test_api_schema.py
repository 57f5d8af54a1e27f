"""docs/schema/ holds the JSON schemas of the API replies; they must match the models."""

from __future__ import annotations

import json

from evpnd.api import protocol, schema
from evpnd.api.models import REPLIES


def test_published_schemas_are_current():
    files = {p.name: p.read_text() for p in schema.SCHEMA_DIR.glob("*.json")}
    expected = schema.expected()
    stale = sorted(name for name in expected if files.get(name) != expected[name])
    extra = sorted(set(files) - set(expected))
    assert not stale and not extra, (
        f"docs/schema is out of date (stale {stale}, extra {extra}): "
        "run `.venv/bin/python -m evpnd.api.schema`"
    )


def test_every_command_has_a_reply_model_and_a_schema():
    assert set(REPLIES) == set(protocol.ARGS)
    for cmd in REPLIES:
        doc = json.loads((schema.SCHEMA_DIR / schema.file_name(cmd)).read_text())
        assert doc["type"] == "object" and doc["additionalProperties"] is False
        assert cmd in doc["$comment"]
