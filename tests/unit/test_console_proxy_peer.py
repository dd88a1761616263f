"""The console trusts its SSO proxy by the address of the connection itself, through a real
uvicorn listener: X-Forwarded-For, which the listener believes from SEVFLOW_FORWARDED_ALLOW_IPS
(127.0.0.1 by default) for logs and rate limits, named the trusted proxy's address and let any
caller on the host sign in as whatever user its header named."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from analytics.figures import ResponseTargets
from models.access import Scope
from receiver.console import ConsoleConfig, console_mount
from receiver.console.identity import ProxyTrust
from receiver.console.session import SessionSigner
from receiver.incident_api import incident_routes
from receiver.peer import connection_peer
from sevflow.listeners import listener_config
from store.db import async_engine, sync_engine
from store.schema import metadata
from tests.builders import T0
from tests.unit.test_console import _credentials
from tests.unit.test_listener_limits import LIMITS

USER_HEADER = "X-Forwarded-User"


async def _serve(app: Starlette) -> AsyncIterator[str]:
    config = listener_config(app, "127.0.0.1", 0, LIMITS, forwarded_allow_ips="127.0.0.1")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, it has no event to await
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await task


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
    config = ConsoleConfig(
        engine=store,
        credentials=_credentials(),
        signer=SessionSigner(b"k" * 32, timedelta(hours=12)),
        clock=lambda: T0,
        targets=ResponseTargets(),
        proxy=ProxyTrust(USER_HEADER, [ip_network(proxy_network)], frozenset({Scope.READ, Scope.ADMIN})),
    )
    return Starlette(routes=[console_mount(config, incident_routes(store))]), store


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
