"""Helpers of the proxy tests: publishing to a fake upstream, reading pages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from orchard.db.models import Artifact
from orchard.upstream.context import upstream_context
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


async def finished(app: Any, sha256: str, seconds: float = 10.0) -> dict[str, Any]:
    """The artifact's digests once the proxy's deferred work (the digests not
    verified before answering, the dependencies) has been done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        async with app.state.db.session() as session:
            row = await session.get(Artifact, sha256, populate_existing=True)
        done = row is not None and row.md5 and row.sha1 and row.sha512
        if done and not upstream_context(app).finishing:
            return {"md5": row.md5, "sha1": row.sha1, "sha512": row.sha512}
        assert loop.time() < deadline, f"{sha256} was not finished in {seconds} s"
        await asyncio.sleep(0.05)


async def count(app: Any, model: Any) -> int:
    async with app.state.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
