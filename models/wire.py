"""Reading a record another process wrote: its JSON object, a newer version, its problems in words.

Three readers take records from topics that other processes, of other releases or of nobody's
making, write: the worker (alerts, commands, probe results), the sinks and the analytics reader
(incident events). Each refuses what it cannot read, with words an operator can act on, and never
raises on it: a record that raises stops its reader again at every restart. This is their one
reading of the bytes, so what one of them learnt holds for all (JSON nested a few kilobytes deep
makes ``json.loads`` raise ``RecursionError``, not ``ValueError``).
"""

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

__all__ = ["json_object", "newer_version", "problems"]


def json_object(raw: bytes | None) -> dict[str, Any] | str:
    """The JSON object ``raw`` holds, or what is wrong with it: "empty record", "not JSON",
    "JSON nested too deeply" or "not a JSON object"."""
    if raw is None:
        return "empty record"
    try:
        document = json.loads(raw)
    except ValueError:  # (UnicodeDecodeError and JSONDecodeError are both)
        return "not JSON"
    except RecursionError:  # (json.loads recurses once per level)
        return "JSON nested too deeply"
    if not isinstance(document, dict):
        return "not a JSON object"
    return document


def newer_version(document: Mapping[str, Any], supported: int) -> int | None:
    """The document's ``schema_version`` when it is an integer above ``supported`` (an absent
    one is version 1; one of another type is left to the model's validation)."""
    version = document.get("schema_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > supported:
        return version
    return None


def problems(exc: ValidationError) -> str:
    """Each field that failed and why, never its value (a value may be a secret)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)
    )
