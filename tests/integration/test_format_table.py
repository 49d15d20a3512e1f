"""The table of formats (protocols/registry.py): the npm and Go shells
answer in their own error form, and a toy format defined here, added to
the table of the test's app, proxies files from a fake upstream into the
``proxy`` project through the shared services (cached document, fetch
once checked with its own digest: SRI integrity, storing the file)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.app import create_app
from orchard.auth.policy import project_for
from orchard.core import names as core_names
from orchard.db.models import CachedUrl, File, Package, Project, Version
from orchard.deps import CurrentPrincipal, DbDep
from orchard.errors import NotFound, OrchardError, status_for
from orchard.protocols import fetched, registry
from orchard.protocols.base import Format, FormatService, UpstreamRules, format_router
from orchard.settings import Settings
from orchard.upstream.client import HTTPError
from orchard.upstream.context import UpstreamContext, upstream_context
from orchard.upstream.digests import Digest, GoModuleHash, Integrity, module_zip_h1
from orchard.upstream.documents import Answer, Codec, Documents
from orchard.upstream.files import Found, Wanted, fetch_once
from orchard.upstream.sources import Source
from orchard.upstream.stored import Placement
from tests import support
from tests.fakes.documents import FakeUpstream

# --- the shells of the table -----------------------------------------------------------------


async def test_npm_shell_answers_in_npm_form(anon_client: httpx.AsyncClient) -> None:
    for path in ("/npm/proxy/left-pad", "/npm/proxy/@scope/pkg", "/npm/proxy/x/-/x-1.0.0.tgz"):
        r = await anon_client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"error": "not found"}
    r = await anon_client.get("/npm/no-such-project/left-pad")
    assert (
        r.status_code == 404 and set(r.json()) == {"error"} and isinstance(r.json()["error"], str)
    )


async def test_go_shell_answers_in_go_form(anon_client: httpx.AsyncClient) -> None:
    for path in ("/go/proxy/example.test/mod/@v/list", "/go/proxy/example.test/mod/@latest"):
        r = await anon_client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text == "not found\n"
    r = await anon_client.get("/go/no-such-project/example.test/mod/@v/list")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")


async def test_pypi_keeps_its_error_form(anon_client: httpx.AsyncClient) -> None:
    r = await anon_client.get("/pypi/no-such-project/simple/x/")
    assert r.status_code == 404 and set(r.json()["error"]) == {"code", "message"}


def test_the_table_lists_each_format_once() -> None:
    names = [f.name for f in registry.FORMATS]
    assert names == ["pypi", "npm", "go"]
    assert all(f.name_rules.format == f.name for f in registry.FORMATS)


# --- a toy format ----------------------------------------------------------------------------
#
# Its index, at {upstream}/toy/{name}.json: {"files": {filename: {"version", "integrity"}}}
# (or, for a Go-like module zip, {"version", "module", "h1"}),
# files at {upstream}/files/{filename}. Served at /toy/{project}/{name}/{filename}, errors as
# "toy: <message>" in text/plain. Its packages are stored as format "generic".

TOY_FORMAT = "generic"
TOY_DOCS: Documents[dict[str, Any]] = Documents("toy", Codec(lambda d: d, dict))


class ToyService(FormatService[dict[str, Any]]):
    format = TOY_FORMAT

    def __init__(self, upstream: str) -> None:
        self.source = Source("toy", "pypi", upstream, 0, "settings")

    def normalize(self, name: str) -> str:
        return core_names.package_name(name, TOY_FORMAT)

    async def hosted_page(
        self, session: AsyncSession, project: Project, name: str, base: str
    ) -> dict[str, Any] | None:
        return None

    async def upstream_page(
        self, ctx: UpstreamContext, project: Project, name: str, base: str
    ) -> dict[str, Any] | None:
        source = self.source

        async def ask(
            src: Source, etag: str | None, modified: str | None
        ) -> Answer[dict[str, Any]]:
            headers = {"If-None-Match": etag} if etag else {}
            try:
                async with ctx.http.stream(
                    "GET", f"{src.url}/toy/{name}.json", headers=headers, rule=src.rule
                ) as r:
                    if r.status_code == 304:
                        return Answer("not_modified")
                    if r.status_code == 404:
                        return Answer("missing")
                    if r.status_code != 200:
                        return Answer("error")
                    body = b"".join([c async for c in r.aiter_bytes()])
            except HTTPError:
                return Answer("error")
            return Answer("ok", json.loads(body), r.headers.get("etag"))

        doc = await TOY_DOCS.load(ctx, name, [source], ask)
        if doc is None:
            return None
        found = doc.current([source])
        return found[0][1].payload if found and not found[0][1].missing else None

    async def upstream_file(
        self, ctx: UpstreamContext, project: Project, path: str, *, stream: bool
    ) -> Found | None:
        name, _, filename = path.partition("/")
        page = await self.upstream_page(ctx, project, self.normalize(name), "")
        entry = (page or {}).get("files", {}).get(filename)
        if entry is None:
            return None
        url = f"{self.source.url}/files/{filename}"
        digest: Digest = (
            GoModuleHash(entry["h1"], entry["module"], entry["version"])
            if "h1" in entry
            else Integrity(entry["integrity"])
        )
        wanted = Wanted(url, digest, {}, self.source.rule)
        place = Placement(TOY_FORMAT, name, entry["version"], filename)
        return Found(filename, await fetch_once(ctx, wanted, place, stream=stream))

    def render(self, page: dict[str, Any], media_type: str) -> bytes:
        return json.dumps(page).encode()


async def toy_errors(request: Request, exc: OrchardError) -> Response:
    return PlainTextResponse(f"toy: {exc.message}", status_code=status_for(exc))


def toy_router(upstream: str) -> APIRouter:
    service = ToyService(upstream)
    router = format_router(toy_errors)

    @router.get("/toy/{project}/{path:path}")
    async def toy_file(
        request: Request, project: str, path: str, db: DbDep, principal: CurrentPrincipal
    ) -> Response:
        async with db.session() as session:
            row = await project_for(session, principal, project, "read")
        ctx = upstream_context(request.app)
        found = await service.upstream_file(ctx, row, path, stream=fetched.streams(request))
        if found is None:
            raise NotFound(f"no toy file at {path}")
        return await fetched.answer(request, ctx, found)

    return router


HOOKS: list[str] = []


async def toy_start(app: Any) -> None:
    HOOKS.append("start")


async def toy_stop(app: Any) -> None:
    HOOKS.append("stop")


def _sri(body: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(body).digest()).decode()


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
async def toy_client(settings: Settings, fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    toy = Format(
        name="toy",
        router=lambda _settings: toy_router(fake.url),  # a factory taking the settings
        names=registry.name_rules,
        errors=toy_errors,
        upstream=UpstreamRules(None, Integrity),
        on_start=(toy_start,),
        on_stop=(toy_stop,),
    )
    HOOKS.clear()
    app = create_app(settings, formats=(*registry.FORMATS, toy))
    async with app.router.lifespan_context(app):
        transport = support.SettlingTransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c
    assert HOOKS == ["start", "stop"]


def _publish(
    fake: FakeUpstream, name: str, files: dict[str, tuple[str, bytes, str | None]]
) -> None:
    index = {}
    for filename, (version, body, integrity) in files.items():
        fake.bodies[f"/files/{filename}"] = body
        index[filename] = {"version": version, "integrity": integrity or _sri(body)}
    fake.bodies[f"/toy/{name}.json"] = json.dumps({"files": index}).encode()


async def _stored(app: Any, name: str) -> list[tuple[str, str, str]]:
    async with app.state.db.session() as session:
        rows = await session.execute(
            select(Package.format, Version.version, File.filename)
            .join(Version, Version.package_id == Package.id)
            .join(File, File.version_id == Version.id)
            .join(Project, Package.project_id == Project.id)
            .where(Project.name == "proxy", Package.name == name)
            .order_by(File.filename)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_toy_format_proxies_into_the_proxy_project(
    toy_client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    app: Any = toy_client.app  # type: ignore[attr-defined]
    small = b"small toy file\n"
    large = bytes(range(256)) * (6 * 1024)  # 1.5 MiB: streamed and staged, not held
    _publish(
        fake, "yaml", {"yaml-1.0.toy": ("1.0", small, None), "yaml-2.0.toy": ("2.0", large, None)}
    )
    for filename, body in (("yaml-1.0.toy", small), ("yaml-2.0.toy", large)):
        r = await toy_client.get(f"/toy/proxy/yaml/{filename}")
        assert r.status_code == 200 and r.content == body
        assert r.headers["x-orchard-cache"] == "miss"
        again = await toy_client.get(f"/toy/proxy/yaml/{filename}")
        assert again.status_code == 200 and again.content == body
        assert "x-orchard-cache" not in again.headers or again.headers["x-orchard-cache"] != "miss"
        assert fake.hits[f"/files/{filename}"] == 1  # fetched once
    assert fake.hits["/toy/yaml.json"] == 1  # the document is cached
    assert await _stored(app, "yaml") == [
        ("generic", "1.0", "yaml-1.0.toy"),
        ("generic", "2.0", "yaml-2.0.toy"),
    ]


async def test_toy_format_refuses_a_file_its_digest_contradicts(
    toy_client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    app: Any = toy_client.app  # type: ignore[attr-defined]
    _publish(fake, "bad", {"bad-1.0.toy": ("1.0", b"tampered", _sri(b"original"))})
    r = await toy_client.get("/toy/proxy/bad/bad-1.0.toy")
    assert r.status_code == 502 and r.text.startswith("toy: ")  # the toy's own error form
    assert await _stored(app, "bad") == []
    async with app.state.db.session() as session:
        assert (
            await session.scalar(select(CachedUrl).where(CachedUrl.url.like("%bad-1.0%"))) is None
        )
    r = await toy_client.get("/toy/proxy/bad/unlisted.toy")
    assert r.status_code == 404 and r.text.startswith("toy: no toy file")


def _module_zip(module: str, version: str, files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, body in files.items():
            archive.writestr(f"{module}@{version}/{name}", body)
    return out.getvalue()


async def test_toy_format_checks_a_module_zip_by_its_h1(
    toy_client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """A digest of the whole file (Go's h1:) is checked once the zip is
    complete, held in memory (small) or staged (large), before it is stored."""
    app: Any = toy_client.app  # type: ignore[attr-defined]
    module = "example.test/Mod"
    small = _module_zip(module, "v1.0.0", {"go.mod": b"module example.test/Mod\n"})
    large = _module_zip(module, "v2.0.0", {"go.mod": b"module x\n", "blob": os.urandom(1_500_000)})
    wrong = _module_zip(module, "v3.0.0", {"go.mod": b"module example.test/Mod\n"})
    index = {}
    for filename, version, body in (
        ("v1.0.0.zip", "v1.0.0", small),
        ("v2.0.0.zip", "v2.0.0", large),
        ("v3.0.0.zip", "v3.0.0", wrong),
    ):
        fake.bodies[f"/files/{filename}"] = body
        h1 = module_zip_h1(
            io.BytesIO(small if version == "v3.0.0" else body),
            f"{module}@{'v1.0.0' if version == 'v3.0.0' else version}/",
        )
        index[filename] = {"version": version, "module": module, "h1": h1}
    fake.bodies["/toy/gomod.json"] = json.dumps({"files": index}).encode()
    for filename, body in (("v1.0.0.zip", small), ("v2.0.0.zip", large)):
        r = await toy_client.get(f"/toy/proxy/gomod/{filename}")
        assert r.status_code == 200 and r.content == body
    r = await toy_client.get("/toy/proxy/gomod/v3.0.0.zip")
    assert r.status_code == 502 and "differs" in r.text
    assert await _stored(app, "gomod") == [
        ("generic", "v1.0.0", "v1.0.0.zip"),
        ("generic", "v2.0.0", "v2.0.0.zip"),
    ]
