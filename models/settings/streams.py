"""The stream worker: classification, grouping, lifecycle."""

from pydantic import BaseModel

__all__ = ["StreamSettings"]


class StreamSettings(BaseModel):
    """The stream worker: classification, grouping, lifecycle."""
