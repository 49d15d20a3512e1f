"""An upstream URL that carries credentials (as pip.conf and PIP_INDEX_URL
often do: ``https://user:token@host/simple``): they are sent as Basic auth
to that upstream, and never kept in the database or shown."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orchard.db.models import CachedUrl
from orchard.settings import Settings
from tests.fakes.pypi_upstream import FakePyPI
from tests.pypi_proxy_support import file_url, publish

TOKEN = "t0ken/with:odd@chars"


@pytest.fixture
def settings(stack_settings: Settings, fake: FakePyPI) -> Settings:
    quoted = "t0ken%2Fwith%3Aodd%40chars"
    with_credentials = fake.url.replace("http://", f"http://__token__:{quoted}@")
    return stack_settings.model_copy(update={"upstream_pypi_url": with_credentials})


async def test_url_credentials_are_sent_and_not_kept(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    expected = "Basic " + base64.b64encode(f"__token__:{TOKEN}".encode()).decode()
    fake.index.require_auth = expected
    wheel = publish(fake, "private-dep", "1.0")
    url = await file_url(client, "private-dep", wheel.filename)
    assert (await client.get(url)).content == wheel.content
    assert fake.index.headers["/simple/private-dep/"]["authorization"] == expected
    assert fake.index.headers[f"/files/{wheel.filename}"]["authorization"] == expected
    async with app.state.db.session() as session:
        stored = list(await session.scalars(select(CachedUrl.url)))
    assert stored and all("t0ken" not in u and "__token__" not in u for u in stored)
    health = await client.get("/health")
    assert "t0ken" not in health.text
