"""The end-to-end canary: a synthetic alert that proves the whole path pages.

Every ``SEVFLOW_CANARY_INTERVAL_SECONDS`` the receiver posts one canary alert to its own webhook
(``receiver.canary``), firing and then resolved. It crosses everything a real alert crosses
(the webhook's credentials, Kafka, the worker's rules and store, the outbox, ``incident-events``)
and ends as a low-urgency PagerDuty alert on a routing key of its own. What marks it:

* the label ``sevflow_canary="true"``: the worker sets :attr:`Incident.canary` on the incident it
  opens, and everything downstream decides on that flag (the escalation policy pages nobody, the
  PagerDuty sink routes it to the canary's key with severity ``info``, Slack and the status page
  leave it out, analytics does not count it);
* a round label with a fresh value each round, so each round is a new alert (another
  fingerprint) in a new group, hence a new incident.

This module holds the rule (which labels, what payload) and nothing that reads a clock.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from models.alertmanager import format_group_key

__all__ = [
    "CANARY_ALERTNAME",
    "CANARY_LABEL",
    "CANARY_ROUND_LABEL",
    "canary_group_key",
    "canary_labels",
    "canary_payload",
    "is_canary",
]

CANARY_ALERTNAME = "SevflowCanary"
CANARY_LABEL = "sevflow_canary"
CANARY_ROUND_LABEL = "sevflow_canary_round"
#: The Alertmanager receiver name the canary's payloads carry.
CANARY_RECEIVER = "sevflow-canary"


def is_canary(labels: Mapping[str, str]) -> bool:
    """True for an alert the canary sent (``sevflow_canary="true"``)."""
    return labels.get(CANARY_LABEL) == "true"


def canary_labels(round_id: str) -> dict[str, str]:
    """The labels of one round's alert: ``severity="info"`` (the shipped rules make it SEV4)."""
    return {
        "alertname": CANARY_ALERTNAME,
        CANARY_LABEL: "true",
        CANARY_ROUND_LABEL: round_id,
        "service": "sevflow",
        "severity": "info",
    }


def canary_group_key(labels: Mapping[str, str]) -> str:
    """The group of a canary alert: its round, so each round opens an incident of its own (the
    same group firing again within the reopen window would reopen the last round's)."""
    round_only = format_group_key({CANARY_ROUND_LABEL: labels.get(CANARY_ROUND_LABEL, "")})
    return f'{{}}/{{{CANARY_LABEL}="true"}}:{round_only}'


def canary_payload(
    round_id: str,
    status: Literal["firing", "resolved"],
    starts_at: datetime,
    ends_at: datetime | None = None,
) -> dict[str, Any]:
    """The Alertmanager webhook body (version 4) of one round, firing or resolved."""
    labels = canary_labels(round_id)
    alert: dict[str, Any] = {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": "sevflow canary: the alert path works end to end",
            "description": "A synthetic alert sevflow sends itself on a schedule; it pages "
            "nobody (low urgency, the canary's own PagerDuty routing key).",
        },
        "startsAt": starts_at.isoformat(),
        "endsAt": (ends_at or starts_at).isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
    }
    return {
        "version": "4",
        "status": status,
        "receiver": CANARY_RECEIVER,
        "groupKey": canary_group_key(labels),
        "groupLabels": {CANARY_ROUND_LABEL: round_id},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "truncatedAlerts": 0,
        "alerts": [alert],
    }
