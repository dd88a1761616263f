"""``sevflow sinks``, now built in :mod:`sevflow.roles.sinks` (the fan-out in sinks/fanout.py);
the names kept here for the code and tests that import them from this place."""

from sevflow.roles.sinks import SINK_STOP_GRACE, create_sink_tables, run_sinks, serve_sinks

__all__ = ["SINK_STOP_GRACE", "create_sink_tables", "run_sinks", "serve_sinks"]
