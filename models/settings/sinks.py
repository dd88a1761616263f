"""The notification sinks: PagerDuty, Slack, status page."""

from pydantic import BaseModel

__all__ = ["SinkSettings"]


class SinkSettings(BaseModel):
    """The notification sinks: PagerDuty, Slack, status page."""
