"""Which sinks run: now in :mod:`sinks.fanout` (the sinks side in one file); the names kept here
for the code and tests that import them from this place."""

from sinks.fanout import build_sinks, effects_for

__all__ = ["build_sinks", "effects_for"]
