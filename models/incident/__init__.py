"""Incidents and their lifecycle: a pure state machine over alerts, commands and time.

::

    (no incident) --firing alert--> TRIGGERED --ack--> ACKNOWLEDGED --resolve--> RESOLVED
                                        |  ^------------- reopen (firing within the window) --|
                                        '--resolve / all alerts resolved + quiet period ------>'

With a verification probe for its service (models/verification.py), all alerts resolved is not
enough: the quiet period ends only once a probe result in it passed, and a failing result keeps
the incident open in ``monitoring`` and starts the quiet period again.

Every function here takes the current state and ``now`` and returns the new state with the events
that describe the change, or ``None`` when nothing changes (a duplicate, a stale record, an ack of
an acknowledged incident). Nothing here reads a clock or does I/O, so the whole lifecycle is tested
in milliseconds; the stream worker persists the result and the events in one transaction.

The package, by idea: ``state`` (the policy, Classification, AlertState, Incident), ``records``
(what a record makes of an alert: ids, stored state, staleness), ``transitions`` (an alert
record's transitions, one function each), ``quiet`` (the quiet period's expiry), ``commands``
(manual commands), ``recorder`` (Outcome and the numbering of events). Import from
``models.incident``: the modules are its parts, not its interface.
"""

from models.incident.commands import (
    COMMAND_ID_MAX,
    COMMAND_SCHEMA_VERSION,
    INCIDENT_ID_MAX,
    PUBLIC_BODY_MAX,
    PUBLIC_TITLE_MAX,
    RESOLUTION_DETAIL_MAX,
    RESOLUTION_DETAILS,
    Command,
    apply_command,
    public_words_problem,
    refusal,
)
from models.incident.quiet import expire_quiet_period, verified
from models.incident.recorder import ALERTMANAGER, SEVFLOW, Outcome, annotate
from models.incident.records import (
    RESOLUTION_SKEW,
    alert_state,
    new_incident_id,
    slugify,
    superseded,
)
from models.incident.state import (
    INSTANCE_LABELS,
    SERVICE_LABELS,
    AlertState,
    Classification,
    Incident,
    LifecyclePolicy,
)
from models.incident.transitions import (
    PUBLIC_ANNOTATIONS,
    RunbookChooser,
    TeamChooser,
    apply_alert,
    can_take_back,
    unchanged,
)

__all__ = [
    "ALERTMANAGER",
    "COMMAND_ID_MAX",
    "COMMAND_SCHEMA_VERSION",
    "INCIDENT_ID_MAX",
    "INSTANCE_LABELS",
    "PUBLIC_ANNOTATIONS",
    "PUBLIC_BODY_MAX",
    "PUBLIC_TITLE_MAX",
    "RESOLUTION_DETAILS",
    "RESOLUTION_DETAIL_MAX",
    "RESOLUTION_SKEW",
    "SERVICE_LABELS",
    "SEVFLOW",
    "AlertState",
    "Classification",
    "Command",
    "Incident",
    "LifecyclePolicy",
    "Outcome",
    "RunbookChooser",
    "TeamChooser",
    "alert_state",
    "annotate",
    "apply_alert",
    "apply_command",
    "can_take_back",
    "expire_quiet_period",
    "new_incident_id",
    "public_words_problem",
    "refusal",
    "slugify",
    "superseded",
    "unchanged",
    "verified",
]
