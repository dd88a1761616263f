"""Webhook credentials: bearer and basic, several at once, nothing leaked."""

import base64

from pydantic import SecretStr

from receiver.auth import WebhookAuth


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


def test_bearer_and_basic_rotation() -> None:
    auth = WebhookAuth(
        [SecretStr("tok-old"), SecretStr("tok-new")],
        [SecretStr("am:pw-old"), SecretStr("am:pw:with:colons")],
    )
    assert auth.allows("Bearer tok-old")
    assert auth.allows("bearer tok-new")
    assert auth.allows(basic("am:pw-old"))
    assert auth.allows(basic("am:pw:with:colons"))
    for header in [None, "", "Bearer", "Bearer tok", basic("am:pw"), "Basic !!!", "Token tok-new"]:
        assert not auth.allows(header)
    assert not auth.allows(basic("tok-new"))  # a bearer token is not a basic credential


def test_non_ascii_credentials_are_refused_not_crashing() -> None:
    auth = WebhookAuth([SecretStr("tok")])
    assert not auth.allows("Bearer tök")
    assert not auth.allows("Bearer \udcff")


def test_only_bearer_configured_refuses_basic() -> None:
    auth = WebhookAuth([SecretStr("tok")])
    assert not auth.allows(basic("user:tok"))


def test_open_only_without_credentials() -> None:
    assert WebhookAuth(allow_unauthenticated=True).allows(None)
    assert not WebhookAuth([SecretStr("t")], allow_unauthenticated=True).allows(None)


def test_repr_hides_secrets() -> None:
    auth = WebhookAuth([SecretStr("very-secret")], [SecretStr("u:hunter2")])
    assert "very-secret" not in repr(auth)
    assert "hunter2" not in repr(auth)
