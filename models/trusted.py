"""A pydantic model built from values that are valid already, without validating them again.

Why: each incident event carries snapshots of the incident and the alert, built from an
``Incident`` and an ``AlertState`` that were validated when they were made; validating the same
values again (or ``model_construct``, which loops over every field in Python to fill defaults
and aliases) was a third of the cost of a transition. :func:`trusted` sets the model's state
as ``model_construct`` does, from a complete set of values. tests/unit/test_event_construction.py
holds every kind of event built this way to what validation builds.
"""

from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["trusted"]

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """``cls`` holding exactly ``values``: every field of ``cls`` given by its name (no defaults
    filled in, no aliases), each already of its field's type. Only for models without private
    attributes, extra fields or post-init hooks (sevflow's frozen event models)."""
    if len(values) != len(cls.__pydantic_fields__):
        missing = set(cls.__pydantic_fields__) - set(values)
        raise ValueError(f"{cls.__name__} built without {sorted(missing)} or with unknown fields")
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
