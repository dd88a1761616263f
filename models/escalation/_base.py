"""The two kinds of model the escalation package is made of."""

from pydantic import BaseModel, ConfigDict

__all__ = ["Frozen", "Stored"]


class Frozen(BaseModel):
    """A piece of a policy file: immutable, an unknown key refused (a typo must fail at start)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Stored(BaseModel):
    """A document sevflow stores and reads back: a field a newer version added is ignored, so
    workers of two versions can run side by side during a rolling upgrade. (Policy files keep
    refusing unknown keys: a typo there must fail at start.)"""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)
