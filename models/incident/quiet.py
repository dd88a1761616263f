"""The quiet period: an incident whose alerts all resolved resolves once it has been quiet
long enough (and, with a verification probe, once the probe passed in it)."""

from datetime import datetime, timedelta

from models.events import EventType, IncidentState
from models.incident.recorder import SEVFLOW, Outcome, Recorder
from models.incident.state import Incident, LifecyclePolicy

__all__ = ["expire", "expire_quiet_period", "verified"]


def verified(incident: Incident) -> bool:
    """True when the incident's probe passed in its current quiet period, after its latest
    failure (a failure restarts the quiet period and clears the pass)."""
    return (
        not incident.monitoring
        and incident.verified_at is not None
        and incident.quiet_since is not None
        and incident.verified_at >= incident.quiet_since
    )


def expire(
    incident: Incident, policy: LifecyclePolicy, now: datetime, rec: Recorder, verify: bool = False
) -> Incident:
    # A canary is resolved as soon as its alert is: nobody watches a fix, and its PagerDuty alert
    # should not stay open for the quiet period.
    quiet = timedelta(0) if incident.canary else policy.quiet_period
    if (
        incident.is_open
        and incident.alerts_firing == 0
        and incident.quiet_since is not None
        and now >= incident.quiet_since + quiet
        and (not verify or verified(incident))
    ):
        incident = incident.model_copy(
            update={
                "state": IncidentState.RESOLVED,
                "resolved_at": now,
                "resolved_by": SEVFLOW,
                "quiet_since": None,
                "monitoring": False,
                "verified_at": None,
            }
        )
        incident = rec.emit(
            incident,
            EventType.RESOLVED,
            SEVFLOW,
            reason="the canary's alert resolved"
            if incident.canary
            else f"all alerts resolved for {policy.quiet_period}"
            + (" and the verification probe passed" if verify else ""),
        )
    return incident


def expire_quiet_period(
    incident: Incident, policy: LifecyclePolicy, now: datetime, verify: bool = False
) -> Outcome | None:
    """Resolve an incident whose alerts have all been resolved for the quiet period; with
    ``verify`` (a probe is configured for it: models/verification.py), only once its probe passed
    in that quiet period (:func:`verified`)."""
    rec = Recorder(now)
    updated = expire(incident, policy, now, rec, verify)
    return Outcome(updated, None, rec.events) if rec.events else None
