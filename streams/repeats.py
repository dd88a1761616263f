"""Which records of a batch are repeats decided on their alerts' brief stored state alone
(models/incident/briefs.py), so the worker reads neither their alerts' full rows nor their
incidents' documents (streams/pipeline.py).

A record is such a repeat when :func:`models.incident.unchanged` holds for it against its
alert's brief and the incident the alert counts in, and nothing else in the batch can change
what that was decided on:

- a record older than its alert's stored state, or a resolution of an alert resolved already,
  is decided on the alert alone: no other record of that alert may change in the batch;
- a firing record of an alert firing already, with the same ``startsAt``, in its own group's
  latest incident (not held by a maintenance window) is decided on that incident as well: no
  record of that group that changes anything may be in the batch either, nor one of an alert
  that last counted in an incident of that group (it may be taken back there).

Every other record is decided as before, in order, on the full state under the groups' locks
(:func:`streams.placement.home`, :func:`models.incident.apply_alert`); a record skipped here
would have been decided there to change nothing.
"""

from collections.abc import Mapping, Sequence

from models.alert import AlertRecord, RecordPosition
from models.incident import LifecyclePolicy, superseded, unchanged
from models.incident.briefs import AlertBrief

__all__ = ["repeats"]

_NOT, _ALERT, _GROUP = 0, 1, 2  # not a repeat / one decided on the alert / on its incident too


def _kind(
    record: AlertRecord,
    brief: AlertBrief | None,
    position: RecordPosition | None,
    policy: LifecyclePolicy,
) -> int:
    """What a repeat ``record`` is decided on (:data:`_NOT`: it is not one, or may not be)."""
    if brief is None:
        return _NOT
    incident = brief.incident
    if incident is not None and not (incident.latest and incident.group_key == record.group_key):
        incident = None  # (another group's, or not its group's latest: decided in full)
    if not unchanged(incident, brief, record, policy, record.received_at, position):
        return _NOT
    if record.status == "resolved" or superseded(record, brief, position):
        return _ALERT
    # Firing in its incident: a maintenance window leaves it there unless the alert was held.
    return _GROUP if brief.suppressed_by is None else _NOT


def repeats(
    batch: Sequence[AlertRecord],
    where: Sequence[RecordPosition | None],
    briefs: Mapping[str, AlertBrief],
    policy: LifecyclePolicy,
) -> list[bool]:
    """For each record of ``batch`` (positions ``where``), True when it is a repeat decided on
    ``briefs`` (its alert's, read under the batch's group locks) that the batch cannot change."""
    kinds = [_kind(r, briefs.get(r.fingerprint), p, policy) for r, p in zip(batch, where, strict=True)]
    changing: set[str] = set()  # fingerprints of the records decided in full
    groups: set[str] = set()  # the groups whose incidents those may change
    for record, kind in zip(batch, kinds, strict=True):
        if kind == _NOT:
            changing.add(record.fingerprint)
            groups.add(record.group_key)
            brief = briefs.get(record.fingerprint)
            if brief is not None and brief.incident is not None:
                groups.add(brief.incident.group_key)
    return [
        kind != _NOT
        and record.fingerprint not in changing
        and (kind == _ALERT or record.group_key not in groups)
        for record, kind in zip(batch, kinds, strict=True)
    ]
