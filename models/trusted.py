"""A pydantic model built from values that are valid already, without validating them again.

Why: each incident event carries snapshots of the incident and the alert, built from an
``Incident`` and an ``AlertState`` that were validated when they were made; validating the same
values again (or ``model_construct``, which loops over every field in Python to fill defaults
and aliases) was a third of the cost of a transition. :func:`trusted` sets the model's state
as ``model_construct`` does, from a complete set of values. tests/unit/test_event_construction.py
holds every kind of event built this way to what validation builds.
"""

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["revised", "trusted"]

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


def revised(model: M, update: Mapping[str, Any]) -> M:
    """``model`` with the fields of ``update`` replaced: what ``model.model_copy(update=update)``
    gives (which does not validate ``update`` either), without its generic copying (private
    attributes, extra fields, a deep-copy option), which cost more than the rest of an event's
    incident change. Same limits as :func:`trusted`."""
    copy = model.__class__.__new__(model.__class__)
    _set(copy, "__dict__", {**model.__dict__, **update})
    _set(copy, "__pydantic_fields_set__", model.__pydantic_fields_set__ | update.keys())
    _set(copy, "__pydantic_extra__", None)
    _set(copy, "__pydantic_private__", None)
    return copy
