"""The direct lane (protocols/pypi/direct.py): anonymous cache misses of
proxy pages and files, answered without FastAPI's routing, get exactly the
answers the application gives, errors and metrics included."""

from __future__ import annotations

import httpx
import pytest

from orchard.settings import Settings
from tests.fakes.pypi_upstream import FakePyPI
from tests.integration.test_api_transfer import metric
from tests.pypi_proxy_support import HTML, JSON, file_url, publish

COMPARED = ("content-type", "etag", "vary", "cache-control", "location", "x-checksum-sha256")


@pytest.fixture
def settings(stack_settings: Settings, fake: FakePyPI) -> Settings:
    return stack_settings.model_copy(update={"upstream_pypi_url": fake.url})


def _shared(cache_control: str | None) -> str | None:
    """A Cache-Control without its public/private word: a credentialed
    answer (the full route here) is private, an anonymous one is not."""
    if cache_control is None:
        return None
    parts = [p.strip() for p in cache_control.split(",")]
    return ", ".join(p for p in parts if p not in ("public", "private")) or None


def _same(lane: httpx.Response, full: httpx.Response) -> None:
    assert lane.status_code == full.status_code
    assert lane.content == full.content
    for name in COMPARED:
        if name == "cache-control":
            assert "private" not in lane.headers.get(name, "")
            assert _shared(lane.headers.get(name)) == _shared(full.headers.get(name)), name
        else:
            assert lane.headers.get(name) == full.headers.get(name), name


async def test_pages_and_errors_match_the_application(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient, fake: FakePyPI
) -> None:
    """``client`` carries credentials, so it always takes the full route."""
    publish(fake, "tiny", "1.0")
    await client.post("/api/v1/projects", json={"name": "team"})
    for accept in (JSON, HTML):
        for path in ("/pypi/simple/tiny/", "/pypi/proxy/simple/tiny/", "/pypi/team/simple/tiny/"):
            lane = await anon_client.get(path, headers={"Accept": accept})
            assert lane.status_code == 200
            _same(lane, await client.get(path, headers={"Accept": accept}))
    for path in (
        "/pypi/simple/Tiny/",  # 301 to the normalised name
        "/pypi/team/simple/TINY/",
        "/pypi/simple/absent/",  # 404 in the app's JSON error shape
        "/pypi/nowhere/simple/tiny/",
        "/pypi/proxy/upstream/tiny/tiny-9.9-py3-none-any.whl",
        "/pypi/proxy/upstream/Tiny/tiny-1.0-py3-none-any.whl",
    ):
        lane = await anon_client.get(path, follow_redirects=False)
        _same(lane, await client.get(path, follow_redirects=False))
    unacceptable = {"Accept": "image/png"}
    lane = await anon_client.get("/pypi/simple/tiny/", headers=unacceptable)
    assert lane.status_code == 406
    _same(lane, await client.get("/pypi/simple/tiny/", headers=unacceptable))


async def test_files_match_the_application(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient, fake: FakePyPI
) -> None:
    wheel = publish(fake, "tiny", "1.0")
    url = await file_url(anon_client, "tiny", wheel.filename)
    cold = await anon_client.get(url)
    assert cold.status_code == 200 and cold.content == wheel.content
    assert cold.headers["x-orchard-cache"] == "miss"
    warm = await anon_client.get(url, headers={"Accept": "*/*"})  # a new near-cache key
    _same(warm, await client.get(url))
    head = await anon_client.head(url)  # HEAD takes the full route
    assert head.status_code == 200 and head.headers["content-length"] == str(len(wheel.content))
    assert fake.hits(f"/files/{wheel.filename}") == 1


async def test_lane_requests_are_counted_under_their_routes(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient, fake: FakePyPI
) -> None:
    publish(fake, "tiny", "1.0")
    routes = {
        "/pypi/simple/tiny/": "/pypi/simple/{name}/",
        "/pypi/proxy/simple/tiny/": "/pypi/{project}/simple/{name}/",
        "/pypi/proxy/upstream/tiny/absent.whl": "/pypi/{project}/{path}",
    }
    for path, route in routes.items():
        counts = []
        for c in (anon_client, client):
            before = (await client.get("/metrics")).text
            status = (await c.get(path, headers={"Accept": "text/html"})).status_code
            after = (await client.get("/metrics")).text
            labels = {"method": "GET", "route": route, "status": str(status)}
            counts.append(
                metric(after, "orchard_http_requests_total", **labels)
                - metric(before, "orchard_http_requests_total", **labels)
            )
        assert counts == [1, 1], (path, counts)


async def test_near_cache_hits_of_lane_answers_keep_their_route(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient, fake: FakePyPI
) -> None:
    """The second anonymous read of a page is a near-cache hit of the lane's
    answer: it is counted under the same route, not as unmatched."""
    publish(fake, "tiny", "1.0")
    labels = {"method": "GET", "route": "/pypi/simple/{name}/", "status": "200"}
    before = (await client.get("/metrics")).text
    for _ in range(2):
        assert (await anon_client.get("/pypi/simple/tiny/")).status_code == 200
    after = (await client.get("/metrics")).text
    counted = metric(after, "orchard_http_requests_total", **labels) - metric(
        before, "orchard_http_requests_total", **labels
    )
    assert counted == 2
