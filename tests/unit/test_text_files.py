"""Files a setting names are read as UTF-8 text, and say why not in one way (models/text_files.py)."""

from pathlib import Path

import pytest

from models.runbooks import RunbookError
from models.text_files import TextFileError, read_text
from receiver.access import TokenFileError, load_token_file
from streams.escalation import PolicyError, load_policy
from streams.rules import RulesError, load_rules
from streams.runbooks import load_runbooks


def test_a_text_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: []\n# é\n", encoding="utf-8")
    assert read_text(path) == "rules: []\n# é\n"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing.yaml", "cannot be read (No such file or directory)"),
        (lambda d: d, "cannot be read (Is a directory)"),
        (lambda d: _write(d / "latin1.yaml", "caf\xe9\n".encode("latin-1")), "not UTF-8 text (byte 3)"),
    ],
    ids=["missing", "a directory", "not UTF-8"],
)
def test_why_a_file_cannot_be_read(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(TextFileError) as caught:
        read_text(path)
    assert caught.value.reason == reason
    assert caught.value.path == path
    assert str(caught.value) == f"{path}: {reason}"


def test_every_reader_says_it_alike(tmp_path: Path) -> None:
    """The rules, the escalation policy, a runbook and the API tokens file: the path, then the
    same reason (a runbook used to print Python's ``[Errno 21] Is a directory: '…'``)."""
    binary = _write(tmp_path / "binary.yaml", b"\xff\xfe")
    with pytest.raises(RulesError, match=r"binary\.yaml: not UTF-8 text \(byte 0\)$"):
        load_rules(binary)
    with pytest.raises(PolicyError, match=r"binary\.yaml: not UTF-8 text \(byte 0\)$"):
        load_policy(binary)
    runbooks = tmp_path / "runbooks"
    (runbooks / "disk-full.md").mkdir(parents=True)
    with pytest.raises(RunbookError, match=r"disk-full\.md: cannot be read \(Is a directory\)$"):
        load_runbooks(runbooks)
    tokens = tmp_path / "tokens"
    tokens.mkdir(mode=0o700)
    with pytest.raises(
        TokenFileError, match=r"^SEVFLOW_API_TOKENS_FILE .*tokens: cannot be read \(Is a directory\)$"
    ):
        load_token_file(tokens)
    with pytest.raises(
        TokenFileError, match=r"^SEVFLOW_API_TOKENS_FILE .*gone: cannot be read \(No such file"
    ):
        load_token_file(tmp_path / "gone")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
