"""Whether a store's schema is at this release's last migration, read without Alembic.

Why: every role migrates its store at start (store/migrate.py), and Alembic with the Mako
templates and DDL modules it loads stays resident in the role's process for the rest of its
life, about 11 MB, though nearly every start finds the store current: ``sevflow run`` migrates
before it starts the roles, and a Kubernetes deployment's init-db job before the worker
(deploy/kubernetes/init-db-job.yaml). A role that finds the store at :data:`HEAD_REVISION`
leaves Alembic unloaded. tests/unit/test_schema_version.py holds the constant to the
migrations' head, so a new migration that forgets it fails there.
"""

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["HEAD_REVISION", "at_head"]

#: The revision of store/migrations/versions' last migration.
HEAD_REVISION = "0013"


def at_head(engine: Engine) -> bool:
    """True when the store's ``alembic_version`` names :data:`HEAD_REVISION` alone. False when
    it names another revision, none, or cannot be read (no table yet, the store unreachable):
    the migration then decides, and reports what is wrong."""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except SQLAlchemyError:
        return False
    return [row[0] for row in rows] == [HEAD_REVISION]
