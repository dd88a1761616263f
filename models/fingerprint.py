"""The alert fingerprint exactly as Prometheus and Alertmanager compute it.

Alertmanager identifies an alert by ``model.LabelSet.Fingerprint()`` from prometheus/common
(``model/signature.go``, ``labelSetToFingerprint``): FNV-1a 64 over the label names in sorted order,
each name and value followed by the separator byte 0xff, printed as 16 lower-case hex digits. Senders
that omit ``fingerprint`` get the same value here, so their alerts deduplicate with those of a real
Alertmanager.
"""

from collections.abc import Mapping

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF

__all__ = ["fingerprint"]


def fingerprint(labels: Mapping[str, str]) -> str:
    """Return the Alertmanager fingerprint of a label set as 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{h:016x}"
