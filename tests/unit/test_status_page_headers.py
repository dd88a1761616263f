"""The public status page answers with headers that let nothing run, frame or leave it."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sevflow.roles.sinks import create_sink_tables
from sinks.status_server import create_status_app
from store.db import async_engine
from store.status_page import StatusPageStore

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


async def _get(tmp_path: Path, path: str, **options: Any) -> httpx.Response:
    """``GET path`` of the built-in page on a new store."""
    url = f"sqlite:///{tmp_path / 'sevflow.db'}"
    create_sink_tables(url)
    engine = async_engine(url)
    try:
        app = create_status_app(StatusPageStore(engine), lambda: NOW, "Acme")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://status.test"
        ) as client:
            return await client.get(path, **options)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("path", ["/", "/api/status.json", "/health", "/nowhere", "/health/"])
async def test_every_answer_of_the_public_page_is_hardened(tmp_path: Path, path: str) -> None:
    answer = await _get(tmp_path, path)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # (none: default-src 'none' covers scripts)
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"


async def test_a_path_with_a_slash_added_is_not_redirected_elsewhere(tmp_path: Path) -> None:
    """A public page must not send its readers to the host their request named: Starlette's
    307 to the other spelling built its Location from the Host header."""
    answer = await _get(tmp_path, "/api/status.json/", headers={"host": "evil.example"})
    assert answer.status_code == 404
    assert "location" not in answer.headers
