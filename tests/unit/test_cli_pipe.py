"""``sevflow incidents list | head``: a reader that stops early ends the command quietly, as it
ends other Unix tools, instead of a traceback on stderr."""

import os
import subprocess
import sys
from pathlib import Path

from testkit.local import REPO
from testkit.store_backends import fresh_database


def test_a_closed_reader_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fresh_database(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes a line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sevflow", "incidents", "list"],
            stdout=write,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=env | {"SEVFLOW_DATABASE_URL": url},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert done.stderr.decode() == ""
    assert done.returncode == 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it
