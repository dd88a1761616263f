"""The operator console (``/ui/`` on the internal listener, receiver/console/).

Operators sign in with an API token (``read`` to view, ``write`` to act, ``admin`` for maintenance
windows and dead letters), kept in a signed session cookie; or, behind the organisation's SSO
proxy, the proxy's user header names who acts. The header is believed only from the proxy
addresses listed here: from anywhere else it is ignored.
"""

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from models.access import Scope

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BaseModel):
    """The operator console's sign-in and proxy trust."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    ui_enabled: bool = Field(
        default=True,
        description="Serve the operator console at /ui/ on the internal listener.",
    )
    ui_session_key: SecretStr | None = Field(
        default=None,
        description="Key signing the console's session cookies (32+ random characters). Unset: a "
        "random key per start (everyone signs in again after a restart). Set the same key on "
        "every receiver behind one load balancer.",
    )
    ui_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=8_760,
        description="How long a console sign-in lasts before the token is asked for again.",
    )
    ui_login_per_minute: float = Field(
        default=10.0,
        ge=0,
        le=1_000_000,
        description="Sign-in attempts (POST /ui/login) allowed per minute per client address, "
        "after a burst of SEVFLOW_UI_LOGIN_BURST; more get 429 with Retry-After. 0: no limit.",
    )
    ui_login_burst: int = Field(
        default=10,
        ge=1,
        le=1_000_000,
        description="Sign-in attempts a client address may make at once before "
        "SEVFLOW_UI_LOGIN_PER_MINUTE applies.",
    )
    ui_slack_workspace_url: str | None = Field(
        default=None,
        description="The Slack workspace's web address (https://<workspace>.slack.com): the "
        "console links an incident's channel as <url>/archives/<channel id>. Unset: the "
        "channel's name is shown without a link.",
    )
    ui_status_page_url: str | None = Field(
        default=None,
        description="The built-in status page's public address, linked from an incident the "
        "page shows (Atlassian Statuspage's incidents are linked by SEVFLOW_STATUSPAGE_PAGE_ID).",
    )
    ui_trusted_user_header: str | None = Field(
        default=None,
        description="The header the SSO proxy sets to the signed-in user (e.g. X-Forwarded-User, "
        "X-Auth-Request-Email); that user acts, with SEVFLOW_UI_PROXY_SCOPES. Believed only from "
        "SEVFLOW_UI_TRUSTED_PROXIES. Unset: operators sign in with an API token.",
    )
    ui_trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated CIDRs of the SSO proxy (e.g. 10.0.0.5/32); the user header "
        "from any other address is ignored.",
    )
    ui_proxy_scopes: Annotated[frozenset[Scope], NoDecode] = Field(
        default=frozenset({Scope.READ, Scope.WRITE}),
        description="Scopes of a user the SSO proxy names (comma separated among read, write, admin).",
    )

    @field_validator("ui_slack_workspace_url", "ui_status_page_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().lower().startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.strip() if value else None

    @field_validator("ui_trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ui_proxy_scopes", mode="before")
    @classmethod
    def _parse_scopes(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value
