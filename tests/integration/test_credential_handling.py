"""Credentials are read one way (issue 15, points 2, 4 and 5): the near cache
never keeps an answer that needed one, however the cookie is spelt; Basic
passwords obey the forced first change; parallel guesses are counted before
argon2 runs."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from orchard.settings import Settings
from tests.conftest import ADMIN_PASSWORD
from tests.pypi_support import make_wheel, upload_form
from tests.support import PASSWORD, add_member, basic, make_project, make_user

PAGE = "/pypi/secret/simple/hidden-pkg/"


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    # A long near-cache life: a poisoned entry would outlive the whole test.
    return stack_settings.model_copy(update={"cache_ttl_local": 60.0})


@pytest.fixture
async def private_wheel(app: Any, client: httpx.AsyncClient) -> tuple[str, str]:
    """A wheel in a private project, and a session cookie of one of its readers."""
    await make_project(app, "secret", public=False)
    filename, content, _ = make_wheel("hidden-pkg", "1.0")
    r = await client.post("/pypi/secret/", **upload_form(filename, content, "hidden-pkg", "1.0"))
    assert r.status_code == 200, r.text
    await make_user(app, "reader")
    await add_member(app, "secret", "reader", "read")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        login = await c.post("/api/v1/auth/login",
                             json={"username": "reader", "password": PASSWORD})
        assert login.status_code == 200, login.text
        cookie = c.cookies["orchard_session"]
    return filename, cookie


def _file_url(page: httpx.Response, filename: str) -> str:
    hrefs = [h for h in re.findall(r'href="([^"]+)"', page.text) if filename in h]
    assert hrefs, page.text
    return httpx.URL("http://testserver" + PAGE).join(hrefs[0].split("#")[0]).raw_path.decode()


@pytest.mark.parametrize(
    "cookie_headers",
    [
        ["orchard_session ={}"],  # a space before '=': the old byte search missed it
        ["orchard_session= {}"],
        ["theme=dark", "orchard_session={}"],  # split over two Cookie headers
    ],
    ids=["space-before-equals", "space-after-equals", "two-cookie-headers"],
)
async def test_a_credentialed_answer_is_never_served_to_anonymous_clients(
    app: Any, anon_client: httpx.AsyncClient, private_wheel: tuple[str, str],
    cookie_headers: list[str],
) -> None:
    filename, cookie = private_wheel
    headers = [("accept", "text/html")] + [("cookie", h.format(cookie)) for h in cookie_headers]
    page = await anon_client.get(PAGE, headers=headers)
    assert page.status_code == 200, "the reader's cookie, spelt this way, is still honoured"
    assert page.headers["cache-control"].startswith("private")
    file_path = _file_url(page, filename)
    wheel = await anon_client.get(file_path, headers=headers)
    assert wheel.status_code == 200
    assert "public" not in wheel.headers["cache-control"]
    metadata = await anon_client.get(file_path + ".metadata", headers=headers)
    assert metadata.status_code == 200
    for path in (PAGE, file_path, file_path + ".metadata"):
        for _ in range(2):  # the second would be a near-cache hit if one were kept
            anonymous = await anon_client.get(path)
            assert anonymous.status_code == 404, (path, anonymous.status_code)


async def test_basic_password_is_refused_until_the_first_password_is_changed(
    anon_client: httpx.AsyncClient,
) -> None:
    admin = basic("admin", ADMIN_PASSWORD)
    refused = await anon_client.post("/api/v1/projects", json={"name": "owned"}, headers=admin)
    assert refused.status_code == 403
    assert "password change required" in refused.json()["error"]["message"]
    listed = await anon_client.get("/api/v1/users", headers=admin)
    assert listed.status_code == 403
    me = await anon_client.get("/api/v1/auth/me", headers=admin)
    assert me.status_code == 200 and me.json()["must_change_password"] is True


async def test_parallel_password_guesses_are_counted_before_they_are_verified(
    app: Any, anon_client: httpx.AsyncClient, settings: Settings
) -> None:
    await make_user(app, "mallory")

    async def guess(i: int) -> int:
        body = {"username": "mallory", "password": f"guess-{i}"}
        return (await anon_client.post("/api/v1/auth/login", json=body)).status_code

    codes = await asyncio.gather(*(guess(i) for i in range(30)))
    assert set(codes) <= {401, 429}
    assert codes.count(401) <= settings.login_max_failures, codes
    # Basic credentials share the counter: the right password waits out the block.
    r = await anon_client.get("/api/v1/auth/me", headers=basic("mallory", PASSWORD))
    assert r.status_code == 429


async def test_parallel_basic_guesses_are_counted_too(
    app: Any, anon_client: httpx.AsyncClient, settings: Settings
) -> None:
    await make_user(app, "oscar")
    codes = await asyncio.gather(*(
        anon_client.get("/api/v1/auth/me", headers=basic("oscar", f"wrong-{i}"))
        for i in range(30)
    ))
    statuses = [r.status_code for r in codes]
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) <= settings.login_max_failures, statuses


async def test_a_burst_of_right_passwords_is_not_throttled(
    app: Any, anon_client: httpx.AsyncClient, settings: Settings
) -> None:
    """A CI job reading with user:password in its index URL sends requests in
    parallel: checks beyond the limit wait for those in flight, and every
    success gives its count back."""
    await make_project(app, "open")
    await make_user(app, "fleet")
    answers = await asyncio.gather(*(
        anon_client.get("/api/v1/auth/me", headers=basic("fleet", PASSWORD))
        for _ in range(settings.login_max_failures * 2 + 2)
    ))
    assert [r.status_code for r in answers] == [200] * len(answers)
    for _ in range(settings.login_max_failures + 2):
        r = await anon_client.get("/api/v1/auth/me", headers=basic("fleet", PASSWORD))
        assert r.status_code == 200 and r.json()["username"] == "fleet"
