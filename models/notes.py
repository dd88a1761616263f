"""Free text a caller writes about who acted or why (a ``by``, a note): one clean line.

Such a note lands in log lines, the incident's record, the audit log and Slack messages. A line
break or another control or format character (a bidirectional override, a zero-width space) would
let a caller write a log line of its own or make the text read differently from what it holds, so
each becomes a space; runs of white space become one, and the note is cut to :data:`NOTE_MAX`
characters. One rule for every way in: the Slack and PagerDuty callbacks, the API and the CLI.
"""

import unicodedata

__all__ = ["NOTE_MAX", "clean_note", "one_line"]

NOTE_MAX = 128


def clean_note(value: object, limit: int = NOTE_MAX) -> str | None:
    """``value`` as one printable line of at most ``limit`` characters; None when it is not a
    string or nothing printable is left."""
    if not isinstance(value, str):
        return None
    note = one_line(value)[:limit]
    return note or None


def one_line(text: str) -> str:
    """``text`` as one printable line: each control or format character (a line break, a bidi
    override) a space, runs of white space one space, none at either end."""
    return " ".join("".join(" " if _unprintable(c) else c for c in text).split())


def _unprintable(char: str) -> bool:
    # Cc controls, Cf format characters, Cs/Co/Cn; Zl/Zp are U+2028 and U+2029 (line breaks).
    category = unicodedata.category(char)
    return category[0] == "C" or category in ("Zl", "Zp")
