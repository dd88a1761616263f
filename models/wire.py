"""Reading a record another process wrote: its JSON object, a newer version, its problems in words.

Three readers take records from topics that other processes, of other releases or of nobody's
making, write: the worker (alerts, commands, probe results), the sinks and the analytics reader
(incident events). Each refuses what it cannot read, with words an operator can act on, and never
raises on it: a record that raises stops its reader again at every restart. This is their one
reading of the bytes, so what one of them learnt holds for all (JSON nested a few kilobytes deep
makes ``json.loads`` raise ``RecursionError``, not ``ValueError``; a ``\\ud800`` escape makes it
return a string no UTF-8 text can hold, which fails later, wherever it is encoded: in a
transaction, in a Kafka record, in a log line).

:func:`read_json` is the same reading for the JSON bodies the receiver's endpoints take.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

__all__ = [
    "NotJson",
    "json_object",
    "lone_surrogate_at",
    "newer_version",
    "problems",
    "read_json",
    "unknown_fields",
]


class NotJson(ValueError):
    """Bytes that are not JSON text sevflow can read; the message says why, never a value."""


def read_json(raw: bytes | str) -> Any:
    """``json.loads(raw)``, or :class:`NotJson` worded "not JSON", "JSON nested too deeply" or
    "not valid UTF-8: a lone surrogate in <where>" (``labels.x``: the key or value that holds
    it)."""
    try:
        document = json.loads(raw)
    except ValueError:  # (UnicodeDecodeError and JSONDecodeError are both)
        raise NotJson("not JSON") from None
    except RecursionError:  # (json.loads recurses once per level)
        raise NotJson("JSON nested too deeply") from None
    # Only a \uXXXX escape can make one (bytes are decoded strictly); sevflow's own writers
    # escape nothing but control characters, so the walk is rare.
    escaped = b"\\u" in raw if isinstance(raw, bytes) else "\\u" in raw
    if escaped and (where := lone_surrogate_at(document)) is not None:
        raise NotJson(f"not valid UTF-8: a lone surrogate in {where}")
    return document


def lone_surrogate_at(value: object, path: str = "") -> str | None:
    """Where the first string (a key or a value) of ``value`` that is not valid UTF-8 is, as a
    dotted path ("the document" for ``value`` itself), or None. The path's keys are written
    printable (a surrogate as ``\\udc80``) and cut at 64 characters: the path is shown."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "the document"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = str(key).encode("utf-8", "backslashreplace").decode()[:64]
            where = f"{path}.{name}" if path else name
            if (found := lone_surrogate_at(key, where)) or (found := lone_surrogate_at(item, where)):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := lone_surrogate_at(item, f"{path}.{index}" if path else str(index)):
                return found
    return None


def json_object(raw: bytes | None) -> dict[str, Any] | str:
    """The JSON object ``raw`` holds, or what is wrong with it: "empty record", "not JSON",
    "JSON nested too deeply", "not valid UTF-8: a lone surrogate in <where>" or "not a JSON
    object"."""
    if raw is None:
        return "empty record"
    try:
        document = read_json(raw)
    except NotJson as exc:
        return str(exc)
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


def unknown_fields(document: Mapping[str, Any], takes: Sequence[str]) -> str | None:
    """The body's fields a request does not take, named (the first five, each cut to 64
    characters) beside those it takes, in the order given; None when there are none. A field
    ignored rather than refused did harm: a misspelt ``positions`` replayed every record, a
    misspelt ``episode`` acted on the current episode."""
    unknown = sorted(str(name) for name in set(document) - set(takes))
    if not unknown:
        return None
    named = ", ".join(repr(name[:64]) for name in unknown[:5])
    return f"unknown field(s) {named}: this request takes {', '.join(takes)}"
