"""Every table of the store, in one import: what migrations and ``create_all`` must see.

Each part declares its tables in its own module on the shared :data:`store.schema.metadata`;
importing this module registers them all.
"""

import store.audit
import store.console_sessions
import store.escalation_schema
import store.notices
import store.sinks_schema
from store.schema import metadata

__all__ = ["metadata"]

_REGISTERED = (
    store.audit,
    store.console_sessions,
    store.escalation_schema,
    store.notices,
    store.sinks_schema,
)
