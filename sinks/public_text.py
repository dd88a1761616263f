"""An alert author's public words, fitted into the playbook's status-page sentences. Pure.

The playbook writes "We are investigating reports of slow API response times." and "The issue
has been resolved. API response times have returned to normal.". Alert authors write the
``impact`` and ``resolved_text`` annotations however they like ("Users see errors on
checkout.", "checkout is back"), so the words are fitted, never pasted:

- :func:`impact_phrase`: the ``impact`` as the noun phrase after "reports of": whitespace
  collapsed, a trailing ``.``/``!``/``?`` dropped, the first letter lower-cased when the first
  word is an ordinary capitalised word ("Users" → "users"; "API", "iOS", "I/O" stay). It is
  refused (None: the caller falls back to "an issue affecting <component>") when it is not one
  noun phrase: more than one sentence or clause (``. ``, ``; ``), or a finite verb — an
  auxiliary or modal anywhere ("is", "are", "cannot", "can't", "will", …) or, after the first
  word, one of the verbs impact annotations are written with ("see", "get", "fail", "receive",
  …). Participles stay noun phrases: "users experiencing slow response times".
- :func:`resolution_sentences`: the ``resolved_text`` after the playbook's "The issue has been
  resolved." (not repeated when the author wrote it), first letter capitalised, ending with a
  full stop when it had no end punctuation.
"""

import re

__all__ = ["RESOLVED", "impact_phrase", "resolution_sentences"]

#: The playbook's opening of every resolution.
RESOLVED = "The issue has been resolved."

#: Auxiliaries and modals: a clause wherever they stand ("checkout is down", "cannot log in").
# fmt: off
_AUXILIARIES = frozenset({
    "am", "is", "are", "was", "were", "be", "been", "has", "have", "had", "do", "does", "did",
    "can", "cannot", "could", "will", "would", "shall", "should", "may", "might", "must",
    "isn't", "aren't", "wasn't", "weren't", "hasn't", "haven't", "hadn't", "don't", "doesn't",
    "didn't", "can't", "couldn't", "won't", "wouldn't", "shouldn't", "mustn't",
})
#: Lexical verbs impact annotations are written with: a clause after the first word ("users see
#: errors"); as the first word they may be nouns or commands, which the auxiliaries cover.
_VERBS = frozenset({
    "see", "sees", "saw", "get", "gets", "got", "fail", "fails", "receive", "receives",
    "encounter", "encounters",
})
# fmt: on
_WORD = re.compile(r"[A-Za-z']+")
_SPACE = re.compile(r"\s+")
_END = ".!?"
#: A sentence or clause boundary inside the text.
_BOUNDARY = re.compile(r"[.!?;]\s")


def _collapsed(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _ordinary_capital(word: str) -> bool:
    """``Users`` yes; ``API``, ``iOS``, ``I/O``, ``A`` (an article is lowered all the same) …"""
    if word in ("A", "An", "The"):
        return True
    return len(word) > 1 and word[0].isupper() and not any(c.isupper() for c in word[1:])


def impact_phrase(impact: str | None) -> str | None:
    """The noun phrase for "We are investigating reports of …", or None when ``impact`` is
    not one (see the module docstring for the rule)."""
    if impact is None:
        return None
    text = _collapsed(impact).rstrip(_END + " ")
    if not text or _BOUNDARY.search(text):
        return None
    words = [w.lower() for w in _WORD.findall(text)]
    if not words or any(w in _AUXILIARIES for w in words) or any(w in _VERBS for w in words[1:]):
        return None
    first, _, rest = text.partition(" ")
    if _ordinary_capital(first):
        text = first[0].lower() + first[1:] + (" " + rest if rest else "")
    return text


def resolution_sentences(resolved_text: str | None) -> str | None:
    """``resolved_text`` after "The issue has been resolved.", or None when there is none."""
    if resolved_text is None:
        return None
    text = _collapsed(resolved_text)
    if not text:
        return None
    text = text[0].upper() + text[1:]
    if text[-1] not in _END:
        text += "."
    if text.lower().startswith(RESOLVED.lower().rstrip(".")):
        return text
    return f"{RESOLVED} {text}"
