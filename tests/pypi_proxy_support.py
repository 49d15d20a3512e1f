"""Helpers of the proxy tests: publishing to a fake upstream, reading pages."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from tests.fakes.pypi_upstream import FakeFile, FakePyPI
from tests.pypi_support import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"


def publish(fake: FakePyPI, name: str, version: str, *, sidecar: bool = True,
            **kw: Any) -> FakeFile:
    filename, content, meta = make_wheel(name, version, **kw)
    return fake.index.add(name, FakeFile(filename, content, meta if sidecar else None,
                                         kw.get("requires_python")))


async def page(client: httpx.AsyncClient, name: str, project: str = "proxy",
               accept: str = JSON) -> httpx.Response:
    return await client.get(f"/pypi/{project}/simple/{name}/", headers={"Accept": accept})


async def file_url(client: httpx.AsyncClient, name: str, filename: str,
                   project: str = "proxy") -> str:
    doc = (await page(client, name, project)).json()
    return next(f["url"] for f in doc["files"] if f["filename"] == filename)


async def count(app: Any, model: Any) -> int:
    async with app.state.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
