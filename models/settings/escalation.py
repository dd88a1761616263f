"""Escalation policy, timers and acknowledgement callbacks."""

from pydantic import BaseModel

__all__ = ["EscalationSettings"]


class EscalationSettings(BaseModel):
    """Escalation policy, timers and acknowledgement callbacks."""
