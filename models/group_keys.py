"""The group key an incident is stored under: the alert group's own, or a bounded stand-in.

Why: the group key is indexed in the incident store (``incident_groups``' primary key,
``incidents.group_key``), and PostgreSQL refuses an index entry of more than about 2.7 kB
(``ProgramLimitExceeded``, which SQLAlchemy reports as an ``OperationalError``, so the worker
took it for a passing fault and retried the batch for ever: one notification with a long
``groupKey``, or long values of the labels it groups by, stopped every alert behind it). SQLite
takes any length. Alertmanager's group keys are the route's matchers and the group's labels, a
few hundred bytes; the receiver takes any length (refusing would lose the group's alerts, since
Alertmanager does not retry a 4xx).

A key of more than :data:`GROUP_KEY_MAX_BYTES` bytes (UTF-8) is stored as its beginning, an
ellipsis and the SHA-256 of the whole key: the same on every replay and on every back end, distinct
for distinct keys, and still readable where an operator sees it.
"""

import hashlib

__all__ = ["GROUP_KEY_MAX_BYTES", "stored_group_key"]

#: The longest group key stored as it is, in UTF-8 bytes: well under PostgreSQL's B-tree limit
#: (2,704 bytes for an index entry, its header included) and above any real Alertmanager key.
GROUP_KEY_MAX_BYTES = 2048

_ELLIPSIS = "…"
_DIGEST = "sha256:"


def stored_group_key(key: str) -> str:
    """``key`` itself when it fits :data:`GROUP_KEY_MAX_BYTES`; else its beginning (whole
    characters), ``…sha256:`` and the hex digest of all of it, together that size at most."""
    if len(key) * 4 <= GROUP_KEY_MAX_BYTES:  # (a character takes at most 4 bytes)
        return key
    encoded = key.encode("utf-8", "surrogatepass")
    if len(encoded) <= GROUP_KEY_MAX_BYTES:
        return key
    suffix = f"{_ELLIPSIS}{_DIGEST}{hashlib.sha256(encoded).hexdigest()}"
    room = GROUP_KEY_MAX_BYTES - len(suffix.encode())
    return encoded[:room].decode("utf-8", "ignore") + suffix
