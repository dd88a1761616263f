"""An incident event's document within what one Kafka record of ``incident-events`` carries.

An event carries its alert's labels and annotations and the incident's texts (title, impact, the
public words, the runbook with its placeholders filled from labels). The receiver takes an alert
of up to a megabyte, so its ``opened`` event could outgrow Kafka's record limit (1 MB by default):
the outbox relay's publish of that batch then failed at every round, and no event of any incident
was published again. So a document over :data:`EVENT_MAX_BYTES` is shrunk before it is stored:
every text cut (visibly, "… (truncated)") to the one length that lets it fit, then, if labels or
annotations are too many even so, those past the first few left out and counted. The event keeps
its id, type, times and every field; the alert's whole labels and annotations stay in the store
(``sevflow incidents show``). Events of ordinary alerts, a few kilobytes, are never touched.

Pure JSON, without pydantic: the outbox relay's process (which loads no models) fits a document
stored before this rule by :func:`fitted_document` as it publishes it.
"""

import json
from typing import TYPE_CHECKING, Any

from models.fitting import capped, largest, longest, widest

if TYPE_CHECKING:
    from models.events import IncidentEvent

__all__ = ["EVENT_MAX_BYTES", "event_document", "fitted_document"]

#: Half of Kafka's default record limit (``message.max.bytes``, 1 MiB): room for the record's
#: key, headers and batch, and for brokers configured a little below the default.
EVENT_MAX_BYTES = 512 * 1024
#: Texts are never cut shorter than this: ids, times, URLs and enum values stay whole.
_TEXT_MIN = 256
#: The wide parts: an alert has up to 1,000 labels and 1,000 annotations (models/alertmanager.py).
_WIDE = ("labels", "annotations")


def event_document(event: "IncidentEvent") -> str:
    """The JSON document stored (and published) for ``event``: its own, or shrunk to fit."""
    return fitted_document(event.model_dump_json())


def fitted_document(document: str) -> str:
    """``document`` (an event's JSON), or the same shrunk to :data:`EVENT_MAX_BYTES`."""
    if len(document) <= EVENT_MAX_BYTES // 4 or _size(document) <= EVENT_MAX_BYTES:
        return document  # (a character takes at most 4 bytes)
    return _fitted(json.loads(document))


def _size(text: str) -> int:
    return len(text.encode())


def _dumped(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _fitted(document: dict[str, Any]) -> str:
    def shortened(cap: int, keep: int | None = None) -> dict[str, Any]:
        shrunk: dict[str, Any] = capped(document, cap, None)
        alert = shrunk.get("alert")
        if keep is not None and isinstance(alert, dict):
            for name in _WIDE:
                if isinstance(alert.get(name), dict):
                    alert[name] = capped(alert[name], cap, keep)
        return shrunk

    def fits(candidate: dict[str, Any]) -> bool:
        return _size(_dumped(candidate)) <= EVENT_MAX_BYTES

    cap = largest(_TEXT_MIN, max(longest(document), _TEXT_MIN), lambda n: fits(shortened(n)))
    if cap is not None:
        return _dumped(shortened(cap))
    alert = document.get("alert") or {}
    wide = max((widest(alert.get(name)) for name in _WIDE), default=0)
    keep = largest(0, wide, lambda n: fits(shortened(_TEXT_MIN, n)))
    return _dumped(shortened(_TEXT_MIN, keep or 0))
