"""``sevflow dlq``: its options (the commands themselves run against Kafka in
tests/integration/test_dlq_cli.py)."""

import argparse

import pytest

from sevflow.commands.dlq import add_parsers as add_dlq_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sevflow")
    add_dlq_command(parser.add_subparsers(dest="command", required=True))
    return parser


def test_list_limit_defaults_to_100() -> None:
    assert _parser().parse_args(["dlq", "list"]).limit == 100
    assert _parser().parse_args(["dlq", "list", "--limit", "3"]).limit == 3


@pytest.mark.parametrize("limit", ["0", "-5", "many"])
def test_list_limit_below_one_is_a_usage_error(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    # --limit 0 listed every dead letter and --limit -5 all but the oldest five (a slice [-n:]).
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["dlq", "list", "--limit", limit])
    assert exited.value.code == 2
    assert "argument --limit" in capsys.readouterr().err
