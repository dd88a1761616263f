"""Where a record of a batch applies: the incident its alert counts in, which may be another
group's (an alert sent in two groups, a changed ``group_by``), decided on the state a transaction
loaded under its groups' locks (streams/pipeline.py)."""

from collections.abc import Sequence

from models.alert import AlertRecord
from models.incident import Incident, LifecyclePolicy, can_take_back
from store.incidents import IncidentTx

__all__ = ["elsewhere", "home", "incident_elsewhere"]


def incident_elsewhere(tx: IncidentTx, record: AlertRecord) -> str | None:
    """The incident this record's alert last counted in, when that is not its group's current one."""
    previous = tx.alert(record.fingerprint)
    if previous is None or previous.incident_id is None:
        return None
    current = tx.incidents_by_group.get(record.group_key)
    return None if current is not None and current.id == previous.incident_id else previous.incident_id


def elsewhere(tx: IncidentTx, batch: Sequence[AlertRecord]) -> list[str]:
    """Incidents of other groups that alerts of ``batch`` last counted in (to lock as well)."""
    return sorted({i for r in batch if (i := incident_elsewhere(tx, r)) is not None})


def home(
    tx: IncidentTx, record: AlertRecord, policy: LifecyclePolicy
) -> tuple[AlertRecord, Incident | None]:
    """The record and the incident it applies to.

    An alert stays in the incident it last counted in, whatever group key it is sent under (an
    Alertmanager route with ``continue: true`` sends one alert in two groups; a changed
    ``group_by`` regroups it), while it fires there, or while that incident can still take it
    back (:func:`models.incident.can_take_back`: open, as in its quiet period, or resolved
    within the reopen window). The record is then taken as one of that incident's group, so a
    re-send is a duplicate, its resolution reaches the incident counting it, and its renewed
    firing, whichever route's notification comes first, re-fires or reopens that incident
    instead of opening a second one. That holds after the incident was resolved by hand while
    the alert still fired, too: its group's own re-sends change nothing then, and neither may
    the other group's. Otherwise (or when that incident is no longer its group's latest) the
    record belongs to its group's current incident.
    """
    elsewhere = incident_elsewhere(tx, record)
    if elsewhere is not None:
        home = tx.incident(elsewhere)  # locked by _elsewhere; None: not its group's latest
        previous = tx.alert(record.fingerprint)
        firing = previous is not None and previous.status == "firing"
        if (
            home is not None
            and tx.incidents_by_group.get(home.group_key) == home
            and (firing or can_take_back(home, policy, record.received_at))
        ):
            return record.model_copy(update={"group_key": home.group_key}), home
    return record, tx.incidents_by_group[record.group_key]
