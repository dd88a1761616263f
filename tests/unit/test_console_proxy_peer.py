"""The console trusts its SSO proxy by the address of the connection itself, through a real
uvicorn listener: X-Forwarded-For, which the listener believes from SEVFLOW_FORWARDED_ALLOW_IPS
(127.0.0.1 by default) for logs and rate limits, named the trusted proxy's address and let any
caller on the host sign in as whatever user its header named."""

from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.access import Scope
from receiver.console.identity import ProxyTrust
from receiver.peer import connection_peer
from store.db import async_engine, sync_engine
from store.schema import metadata
from tests.builders import T0
from tests.unit.test_console import console_alone
from tests.unit.test_listener_limits import LIMITS, serve

USER_HEADER = "X-Forwarded-User"


async def _serve(app: Starlette) -> AsyncIterator[str]:
    """``app`` behind a listener that believes X-Forwarded-For from 127.0.0.1 (the default)."""
    async for port in serve(LIMITS, app):
        yield f"http://127.0.0.1:{port}"


async def test_the_connection_peer_is_kept_beside_the_forwarded_client() -> None:
    async def where(request: Request) -> JSONResponse:
        client = request.client.host if request.client else None
        return JSONResponse({"client": client, "peer": connection_peer(request.scope)})

    async for url in _serve(Starlette(routes=[Route("/", where)])):
        async with httpx.AsyncClient() as client:
            forwarded = await client.get(url, headers={"X-Forwarded-For": "10.0.0.5"})
            plain = await client.get(url)
    assert forwarded.json() == {"client": "10.0.0.5", "peer": "127.0.0.1"}
    assert plain.json() == {"client": "127.0.0.1", "peer": "127.0.0.1"}


def _console_app(tmp_path: Path, proxy_network: str) -> tuple[Starlette, AsyncEngine]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    store = async_engine(url)
    proxy = ProxyTrust(USER_HEADER, [ip_network(proxy_network)], frozenset({Scope.READ, Scope.ADMIN}))
    return console_alone(store, T0, proxy), store


async def _incidents_page(url: str) -> httpx.Response:
    headers = {"X-Forwarded-For": "10.0.0.5", USER_HEADER: "mallory"}
    async with httpx.AsyncClient() as client:
        return await client.get(f"{url}/ui/incidents", headers=headers)


async def test_a_forwarded_address_does_not_make_a_caller_the_sso_proxy(tmp_path: Path) -> None:
    app, store = _console_app(tmp_path, "10.0.0.5/32")
    async for url in _serve(app):
        forged = await _incidents_page(url)
    await store.dispose()
    assert forged.status_code == 303  # to the sign-in page: nobody is signed in
    assert "/ui/login" in forged.headers["location"]
    assert "mallory" not in forged.text


async def test_the_sso_proxy_is_trusted_by_its_connections_address(tmp_path: Path) -> None:
    app, store = _console_app(tmp_path, "127.0.0.1/32")
    async for url in _serve(app):
        proxied = await _incidents_page(url)
    await store.dispose()
    assert proxied.status_code == 200
    assert "mallory" in proxied.text
