"""The console's form posts and the admin API's bodies against hostile senders: a form is
capped before anyone is known, a sender that hangs up mid-body is a 400 (it was a 500 with a
traceback), and a cookie of other than ASCII is no session (it was a 500 on every page)."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from models.access import Scope
from models.settings import Settings
from receiver.access import Principal
from receiver.console.forms import FORM_FIELDS_MAX, FORM_MAX, read_form
from receiver.console.refused import Refused
from receiver.console.session import SessionSigner
from sevflow.admin_api import admin_routes
from store.db import async_engine
from tests.unit.test_console import _console, _csrf

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _request(body: list[bytes], *, length: int | None = None, hang_up: bool = False) -> Request:
    """A POST whose body arrives in ``body``'s chunks; then the sender hangs up if ``hang_up``."""
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": hang_up or i < len(body) - 1}
        for i, chunk in enumerate(body)
    ]
    if hang_up:
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive)


async def test_a_form_is_read_once_capped_and_a_hang_up_is_400() -> None:
    request = _request([b"csrf=abc&text=caf%C3%A9", b"&by="])
    form = await read_form(request)
    assert (form["csrf"], form["text"], form["by"]) == ("abc", "café", "")
    assert await read_form(request) is form  # the CSRF check and the page share it
    refusals = {
        "hang-up": _request([b"csrf=abc&te"], hang_up=True),
        "declared": _request([b"x"], length=FORM_MAX + 1),
        "streamed": _request([b"a" * 60_000, b"b" * 60_000]),
        "fields": _request([b"&".join(b"f%d=1" % i for i in range(FORM_FIELDS_MAX + 1))]),
    }
    statuses = {}
    for name, request in refusals.items():
        with pytest.raises(Refused) as refused:
            await read_form(request)
        statuses[name] = (refused.value.status, refused.value.code)
    assert statuses == {
        "hang-up": (400, "client_disconnected"),
        "declared": (413, "too_large"),
        "streamed": (413, "too_large"),
        "fields": (413, "too_many_fields"),
    }


def test_a_large_form_is_refused_before_anyone_is_known(tmp_path: Path) -> None:
    with _console(tmp_path) as console:
        client = console.client
        page = client.get("/ui/login")
        big = {"token": "x" * (FORM_MAX + 1), "csrf": _csrf(page.text)}
        assert client.post("/ui/login", data=big).status_code == 413
        assert client.post("/ui/maintenance", data=big).status_code == 413


@pytest.mark.parametrize("cookie", ["a.\xe9", "\u2603.\u2603", "1.x.y.9999999999.\xff"])
def test_a_cookie_of_other_than_ascii_is_no_session(cookie: str) -> None:
    signer = SessionSigner(b"k" * 32, timedelta(hours=12))
    assert signer.decode(cookie, NOW) is None


def test_the_sign_in_page_answers_a_browser_holding_a_broken_cookie(tmp_path: Path) -> None:
    with _console(tmp_path) as console:
        cookie = {"cookie": b"sevflow_console=a.\xe9"}
        assert console.client.get("/ui/login", headers=cookie).status_code == 200  # type: ignore[dict-item]


async def test_the_admin_api_answers_a_hang_up_mid_body_with_400(tmp_path: Path) -> None:
    engine = async_engine(f"sqlite:///{tmp_path / 'store.db'}")
    routes = {r.name: r for r in admin_routes(Settings(), engine, clock=lambda: NOW)}
    answered: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        answered.append(message)

    for name in ("maintenance_add", "dlq_replay", "quarantine_replay"):
        request = _request([b'{"matchers": ['], hang_up=True)
        request.scope["state"] = {"principal": Principal("ops", frozenset({Scope.ADMIN}))}
        endpoint: Callable[[Request], Awaitable[Any]] = routes[name].endpoint
        response = await endpoint(request)
        assert response.status_code == 400, name
        assert b"client_disconnected" in response.body
    await engine.dispose()
    assert not answered
