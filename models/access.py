"""Who may do what: API token scopes, and the tokens' configuration format.

A token has a name (who it is: the actor of what it does, shown in the audit log), one or more
scopes and a secret. The scopes are independent: a token carries exactly those listed.

=========  =====================================================================================
webhook    post alerts (``POST /webhooks/alertmanager``) and nothing else
read       the incident API's GETs (incidents, their timelines, the report)
write      acknowledge and resolve incidents
admin      maintenance windows, dead-letter and quarantine replays, everything else
=========  =====================================================================================

Configured as ``name:scope[,scope…]:secret`` entries, comma separated (``SEVFLOW_API_TOKENS``) or
one per line (``SEVFLOW_API_TOKENS_FILE``, ``#`` starts a comment). A name may appear several
times with different secrets (rotation: old and new valid at once). Scope names are a closed set,
so the commas between the scopes of one entry and between entries cannot be confused; a secret
cannot contain a comma or white space. Nothing here reads a file or the environment.
"""

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = ["ApiToken", "Scope", "TokenFormatError", "parse_token_entries", "parse_token_lines"]


class Scope(StrEnum):
    WEBHOOK = "webhook"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


#: A token's name lands in logs, the audit log and Slack messages: plain characters only, so it
#: can never be a mention, a link or a line of its own.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SCOPES = frozenset(s.value for s in Scope)


class TokenFormatError(ValueError):
    """An entry that does not parse; the message names the entry by position, never its secret."""


class ApiToken(BaseModel):
    """One configured token: ``name`` acts with ``scopes`` when the secret is presented."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    scopes: frozenset[Scope]
    secret: SecretStr


def _entry(where: str, name: str, scopes: list[str], secret: str) -> ApiToken:
    if not _NAME.fullmatch(name):
        raise TokenFormatError(
            f"{where}: the name must be 1-64 letters, digits, '.', '_' or '-' (entries are "
            "name:scope[,scope]:secret)"
        )
    unknown = [s for s in scopes if s not in _SCOPES]
    if not scopes or unknown:
        raise TokenFormatError(
            f"{where} ({name}): scopes must be among {', '.join(s.value for s in Scope)}"
        )
    if not secret or any(c.isspace() for c in secret):
        raise TokenFormatError(f"{where} ({name}): the secret is empty or contains white space")
    return ApiToken(name=name, scopes=frozenset(Scope(s) for s in scopes), secret=SecretStr(secret))


def parse_token_entries(text: str, source: str = "SEVFLOW_API_TOKENS") -> list[ApiToken]:
    """``name:scope,scope:secret,name2:scope:secret2`` → tokens; raises :class:`TokenFormatError`.

    Read item by item (split on commas): ``name:scope`` opens an entry, a bare ``scope`` adds to
    it, ``scope:secret`` closes it (``name:scope:secret`` is a whole entry)."""
    tokens: list[ApiToken] = []
    name: str | None = None
    scopes: list[str] = []
    items = [item.strip() for item in text.split(",")]
    for item in items:
        if not item:
            continue
        where = f"{source} entry {len(tokens) + 1}"
        if name is None:
            head, sep, rest = item.partition(":")
            if not sep:
                raise TokenFormatError(
                    f"{where}: expected name:scope[,scope]:secret (a bare token has no name "
                    "and no scopes; write e.g. ops:read,write:<token>)"
                )
            name, scope, sep, secret = head, *rest.partition(":")
            scopes = [scope]
        else:
            scope, sep, secret = item.partition(":")
            scopes.append(scope)
        if sep:
            tokens.append(_entry(where, name, scopes, secret))
            name, scopes = None, []
        elif scopes[-1] not in _SCOPES:
            raise TokenFormatError(f"{where} ({name}): expected name:scope[,scope]:secret")
    if name is not None:
        raise TokenFormatError(f"{source}: the last entry ({name}) has no secret")
    return tokens


def parse_token_lines(text: str, source: str) -> list[ApiToken]:
    """A tokens file: one ``name:scope[,scope]:secret`` per line; blank lines and ``#`` comments
    are skipped."""
    tokens: list[ApiToken] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parsed = parse_token_entries(line, f"{source} line {number}")
        if len(parsed) != 1:
            raise TokenFormatError(f"{source} line {number}: one entry per line")
        tokens.extend(parsed)
    return tokens
