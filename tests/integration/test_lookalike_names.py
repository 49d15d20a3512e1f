"""Look-alike names are refused (issue 15, point 12): projects and files of
one version whose names differ only in case, and names with invisible or
bidirectional-control characters; a clash with a private project says
nothing about it to someone who cannot see it.

Runs on the stack chosen by ``ORCHARD_TEST_STACK``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from orchard.db.base import utcnow
from orchard.db.models import File, Project
from tests import support
from tests.support import bearer, make_project, make_token, make_user

API = "/api/v1"


def file_url(project: str, version: str, filename: str) -> str:
    return f"{API}/project/{project}/packages/lib/versions/{version}/files/{filename}"


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = support.SettlingTransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def message(r: httpx.Response) -> str:
    text: str = r.json()["error"]["message"]
    return text


async def test_project_names_differing_only_in_case(
    client: httpx.AsyncClient, http: httpx.AsyncClient, app: Any
) -> None:
    r = await client.post(f"{API}/projects", json={"name": "SecretProj", "is_public": False})
    assert r.status_code == 201, r.text
    # The administrator sees it: told which project the name clashes with.
    r = await client.post(f"{API}/projects", json={"name": "secretproj"})
    assert r.status_code == 409, r.text
    assert "SecretProj" in message(r)
    # An outsider cannot see it: told only that the name is not available.
    await make_user(app, "eve")
    eve = bearer(await make_token(app, "eve"))
    for name in ("secretproj", "SECRETPROJ", "SecretProj"):
        r = await http.post(f"{API}/projects", headers=eve, json={"name": name})
        assert r.status_code == 409, r.text
        # Its own words back, nothing of the project's (spelling, existence).
        assert message(r) == f"project name {name!r} is not available"
    r = await http.get(f"{API}/projects", headers=eve)
    assert [p["name"] for p in r.json() if p["name"].lower() == "secretproj"] == []


async def test_file_names_differing_only_in_case(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/projects", json={"name": "p"})
    r = await client.put(file_url("p", "1.0", "README.txt"), content=b"one")
    assert r.status_code == 201, r.text
    r = await client.put(file_url("p", "1.0", "readme.TXT"), content=b"two")
    assert r.status_code == 409, r.text
    r = await client.put(file_url("p", "1.1", "readme.TXT"), content=b"two")
    assert r.status_code == 201, r.text  # another version is another namespace
    r = await client.get(f"{API}/project/p/packages/lib/versions/1.0")
    assert [f["filename"] for f in r.json()["files"]] == ["README.txt"]


@pytest.mark.parametrize(
    "filename",
    [
        "evil\u202etxt.exe",  # right-to-left override
        "a\u200bb.txt",  # zero-width space
        "a\u2066b.txt",  # left-to-right isolate
        "a\u00a0b.txt",  # no-break space
        "a\u2028b.txt",  # line separator
        "a\ufeffb.txt",  # zero-width no-break space (BOM)
    ],
)
async def test_invisible_characters_in_file_names(
    client: httpx.AsyncClient, filename: str
) -> None:
    await client.post(f"{API}/projects", json={"name": "p"})
    r = await client.put(file_url("p", "1.0", filename), content=b"x")
    assert r.status_code == 400, r.text


async def test_visible_non_ascii_file_name_is_fine(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/projects", json={"name": "p"})
    r = await client.put(file_url("p", "1.0", "r\u00e9sum\u00e9 2.txt"), content=b"x")
    assert r.status_code == 201, r.text


async def test_invisible_characters_in_token_names(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/tokens", json={"name": "ci\u202e", "scope": "read"})
    assert r.status_code == 400, r.text


async def test_database_refuses_case_variants(app: Any, client: httpx.AsyncClient) -> None:
    """The unique indexes of migration 0005 hold even past the application."""
    await make_project(app, "Alpha")
    with pytest.raises(IntegrityError):
        async with app.state.db.transaction() as session:
            session.add(Project(name="alpha", description=""))
            await session.flush()
    await client.post(f"{API}/projects", json={"name": "q"})
    r = await client.put(file_url("q", "1.0", "data.bin"), content=b"x")
    assert r.status_code == 201, r.text
    async with app.state.db.session() as session:
        row = (await session.execute(select(File.version_id, File.artifact_id))).one()
    with pytest.raises(IntegrityError):
        async with app.state.db.transaction() as session:
            session.add(
                File(
                    version_id=row.version_id,
                    filename="DATA.BIN",
                    artifact_id=row.artifact_id,
                    created_at=utcnow(),
                )
            )
            await session.flush()


async def test_case_clash_check_names_the_existing_file(
    app: Any, client: httpx.AsyncClient
) -> None:
    """``catalog.refuse_case_clash``: the clear message for uploads."""
    from orchard.core import catalog
    from orchard.errors import Conflict

    await client.post(f"{API}/projects", json={"name": "p"})
    r = await client.put(file_url("p", "1.0", "README.txt"), content=b"one")
    assert r.status_code == 201, r.text
    async with app.state.db.session() as session:
        project = await catalog.get_project(session, "p")
        version = await catalog.get_version(
            session, await catalog.resolve_package(session, project, "lib"), "1.0"
        )
        await catalog.refuse_case_clash(session, version, "README.txt")  # the same name
        await catalog.refuse_case_clash(session, version, "other.txt")
        with pytest.raises(Conflict, match=r"'README\.txt'"):
            await catalog.refuse_case_clash(session, version, "readme.TXT")
