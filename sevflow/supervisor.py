"""``sevflow run``'s supervisor, now in :mod:`sevflow.supervise`; the names kept here for the code
that imports them from this place."""

from sevflow.supervise import STATUS_FILE, supervise

__all__ = ["STATUS_FILE", "supervise"]
