"""A file a setting names, read as UTF-8 text, with one way of saying why it cannot be.

Why: the rules, the escalation policy, the teams, the probes, the runbooks, the API tokens, the
secrets a teams file points at and the sinks' CA files are each read at start from a path an
operator typed. Each reader caught ``OSError`` and ``UnicodeDecodeError`` itself, and said it in
its own words: one printed Python's ``[Errno 21] Is a directory: '…'``, the others the reason
alone. Now every one of them says ``cannot be read (<the system's reason>)`` or ``not UTF-8 text
(byte N)``, after the path (or the setting) the reader names.
"""

from pathlib import Path

__all__ = ["TextFileError", "read_text"]


class TextFileError(Exception):
    """``path`` cannot be read as UTF-8 text; ``reason`` says why, without the path."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_text(path: Path) -> str:
    """The whole of ``path`` as UTF-8 text, or :class:`TextFileError` saying why not."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TextFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise TextFileError(path, f"not UTF-8 text (byte {exc.start})") from None
