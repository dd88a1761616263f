"""Decoding the worker's input records: an alert record or a command, or the reason it is refused.

Both topics are written by other processes (receivers, the API, the CLI, Slack and PagerDuty
callbacks) that may run an older or a newer release than this worker while an upgrade rolls.

* A record of an older release reads as it is: fields are only ever added, and an added field
  has a default (an older command has no ``schema_version``: it is version 1).
* Fields this worker does not know are ignored: a newer writer may add them without changing what
  the record means.
* A record of a newer ``schema_version`` is refused: the version changes only when a reader would
  have to behave differently, so read as this version it would do the wrong thing. Writers start
  writing a new version only one release after the readers learnt to read it (README, "Upgrades"),
  so a refusal means a deploy out of order; it is logged naming both versions and counted
  (``sevflow_worker_records_refused_total{reason="newer_schema"}``), which pages.
* A record that is not valid JSON of the model is poison: refused the same way, with the field
  that failed (``reason="invalid"``). Neither kind can ever succeed here, so the worker moves on.

A record is first read the quick way, by pydantic's own JSON parser straight into the model
(``model_validate_json``: a third of the cost of ``json.loads`` and validating the objects it
built, which was a tenth of the worker's loop in a storm). Only a record that fails there, or
reads as a newer version, is read again the careful way above, which words every refusal; so a
record is never accepted that the careful reading would refuse, and
tests/unit/test_record_decoding.py holds both readings to the same result on hostile records.
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from models.alert import ALERT_SCHEMA_VERSION, AlertRecord
from models.incident import COMMAND_SCHEMA_VERSION, Command
from models.verification import PROBE_RESULT_SCHEMA_VERSION, ProbeResult
from models.wire import json_object, newer_version, problems

__all__ = ["Decoded", "decode_alert", "decode_command", "decode_probe_result"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Decoded(Generic[M]):
    """A record, or why it is refused; ``newer``: refused for a newer schema version."""

    record: M | None = None
    refused: str | None = None
    newer: bool = False


def _decode(raw: bytes | None, model: type[M], supported: int, what: str) -> Decoded[M]:
    if raw is not None:
        try:
            record = model.model_validate_json(raw)
        except ValidationError:
            pass  # (the careful reading words the refusal)
        else:
            if getattr(record, "schema_version", 1) <= supported:
                return Decoded(record=record)
    return _read(raw, model, supported, what)


def _read(raw: bytes | None, model: type[M], supported: int, what: str) -> Decoded[M]:
    """The careful reading: the version first, then the model, each refusal worded."""
    document = json_object(raw)
    if isinstance(document, str):
        return Decoded(refused=f"invalid {what}: {document}")
    version = newer_version(document, supported)
    if version is not None:
        return Decoded(
            refused=f"newer {what} schema_version {version} (this worker reads {supported}): "
            "upgrade the workers before the processes that write it",
            newer=True,
        )
    try:
        return Decoded(record=model.model_validate(document))
    except ValidationError as exc:
        return Decoded(refused=f"invalid {what}: {problems(exc)}"[:500])


def decode_alert(raw: bytes | None) -> Decoded[AlertRecord]:
    """An alert record from the alerts topic."""
    return _decode(raw, AlertRecord, ALERT_SCHEMA_VERSION, "alert record")


def decode_command(raw: bytes | None) -> Decoded[Command]:
    """A command from the commands topic."""
    return _decode(raw, Command, COMMAND_SCHEMA_VERSION, "command")


def decode_probe_result(raw: bytes | None) -> Decoded[ProbeResult]:
    """A verification probe result from the probe-results topic (models/verification.py)."""
    return _decode(raw, ProbeResult, PROBE_RESULT_SCHEMA_VERSION, "probe result")
