"""Check results.json files against Gradescope's specification (a JSON Schema kept beside the tests)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import jsonschema

SCHEMA_PATH = Path(__file__).parent / "schemas" / "gradescope_results.schema.json"


@lru_cache(1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(results: dict) -> list[str]:
    """Every way ``results`` breaks the specification, each with where it happened; empty if valid."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
        for error in sorted(_validator().iter_errors(results), key=lambda e: list(e.absolute_path))
    ]
