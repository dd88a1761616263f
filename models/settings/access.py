"""Access: the API's scoped tokens and the guard on maintenance windows.

``SEVFLOW_API_TOKENS`` and the file ``SEVFLOW_API_TOKENS_FILE`` hold ``name:scope[,scope]:secret``
entries (models/access.py). The file is read, and its mode checked, at the receiver's start
(receiver/access.py), not here: settings do no I/O. The webhook credentials
(``SEVFLOW_WEBHOOK_TOKENS`` / ``SEVFLOW_WEBHOOK_BASIC_AUTH``) carry the ``webhook`` scope only.
"""

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode

from models.access import ApiToken, parse_token_entries

__all__ = ["AccessSettings"]


class AccessSettings(BaseModel):
    """Scoped API tokens and maintenance-window limits."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    api_tokens: Annotated[list[ApiToken], NoDecode] = Field(
        default_factory=list,
        description="Tokens of the HTTP API as name:scope[,scope]:secret, comma separated, e.g. "
        "grafana:read:<secret>,oncall-bot:read,write:<secret>,ops:admin:<secret>. Scopes: "
        "webhook (post alerts), read (incident GETs), write (ack/resolve), admin (maintenance, "
        "DLQ and quarantine replays). A name may repeat with another secret (rotation); the name "
        "is the actor of what the token does. Unset: no API access (the webhook credentials are "
        "never API tokens).",
    )
    api_tokens_file: Path | None = Field(
        default=None,
        description="A file of more API tokens, one name:scope[,scope]:secret per line (# "
        "comments). Refused at start when group or others may read or write it (chmod 600).",
    )
    maintenance_max_hours: float = Field(
        default=24.0,
        gt=0,
        le=8_760,
        description='Longest maintenance window created without --force (API: "force": true); '
        "a longer one, or one matching every alert, needs force; its audit record says so.",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_api_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_token_entries(value)  # TokenFormatError never quotes a secret
        return value
