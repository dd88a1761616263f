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


def test_non_ascii_secrets_match_the_utf8_bytes_on_the_wire() -> None:
    # Alertmanager sends the secret's UTF-8 bytes; Starlette hands them over decoded as latin-1.
    def as_starlette_reads(header: str) -> str:
        return header.encode("utf-8").decode("latin-1")

    auth = WebhookAuth([SecretStr("s3cr3t-p\u00e4ss")], [SecretStr("am:p\u00e4ss-\u2603")])
    assert auth.allows(as_starlette_reads("Bearer s3cr3t-p\u00e4ss"))
    assert auth.allows("Basic " + base64.b64encode("am:p\u00e4ss-\u2603".encode()).decode())
    assert not auth.allows(as_starlette_reads("Bearer s3cr3t-p\u00e4sS"))
    assert not auth.allows(as_starlette_reads("Bearer s3cr3t-pass"))


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
