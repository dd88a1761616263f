"""The generic top-level package names resolve to this repository, not to something installed."""

import importlib

import pytest

from testkit.local import REPO


@pytest.mark.parametrize(
    "name", ["models", "streams", "sinks", "receiver", "store", "sevflow", "kafka_admin"]
)
def test_package_resolves_inside_repo(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert module.__file__.startswith(str(REPO / name))


def test_models_import_no_io_layers() -> None:
    """models is pure: importing it must not pull in the store, Kafka or HTTP layers."""
    import subprocess
    import sys

    code = (
        "import sys, models.settings, models.alertmanager, models.alert, models.fingerprint;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'aiokafka', 'faust', 'starlette', 'httpx', 'store', 'streams', 'receiver'}];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kafka_admin_imports_no_role() -> None:
    """The receiver, the worker and the sinks all import kafka_admin: it may import none of them."""
    import subprocess
    import sys

    code = (
        "import sys, kafka_admin.topics;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'store', 'streams', 'receiver', 'sinks', 'sevflow', 'faust'}];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
