"""Upstream URLs under attack (issue 15, points 6 and 11).

Point 11: an upstream page's absolute links are followed only to the
upstream's own origin and the file hosts an admin allowed for the source;
with none allowed, only to https hosts whose addresses are all public
(redirects included). Point 6: credentials in an upstream URL never show
in logs, ``/health``, the API or settings; anonymous ``/health`` shows no
upstream URL at all; a settings URL with a query is refused like the API's.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from orchard.app import create_app
from orchard.protocols.pypi import proxy_index
from orchard.settings import Settings
from orchard.upstream import sources
from orchard.upstream.context import upstream_context
from orchard.upstream.urls import LinkRule, check_upstream_url, mask, parse_file_hosts
from tests.fakes.pypi_upstream import FakeIndex, FakePyPI
from tests.pypi_proxy_support import page, publish
from tests.pypi_support import make_wheel
from tests.support import SettlingTransport, bearer, make_token

SECRET = "s3cr3t-upstream-token"


class Victim:
    """A server on 127.0.0.1 that stands for what an upstream must not reach
    through Orchard (Orchard's own ``/api/v1/audit``, a metadata service):
    it counts every request and answers with bytes worth stealing."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.body = b'{"items": [{"action": "token.create", "secret": "stolen"}]}'
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

        class Server(ThreadingHTTPServer):
            def verify_request(self, request: Any, client_address: Any) -> bool:
                outer.connections += 1  # any connection at all, TLS attempts included
                return True

        self.connections = 0
        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LinkingIndex(FakeIndex):
    """A fake index whose pages may carry extra absolute links (JSON only)."""

    def __init__(self) -> None:
        super().__init__(fmt="json")
        self.links: dict[str, list[dict[str, Any]]] = {}
        self.redirects: dict[str, str] = {}

    def page(self, name: str, as_json: bool) -> bytes:
        doc = json.loads(super().page(name, True))
        doc["files"].extend(self.links.get(name, []))
        return json.dumps(doc).encode()


@pytest.fixture
def victim() -> Iterator[Victim]:
    server = Victim()
    yield server
    server.close()


@pytest.fixture
def fake() -> Iterator[FakePyPI]:
    server = FakePyPI(LinkingIndex()).start()
    yield server
    server.stop()


@pytest.fixture
def settings(stack_settings: Settings, fake: FakePyPI) -> Settings:
    return stack_settings.model_copy(
        update={
            "upstream_pypi_url": fake.url,
            "http_connect_timeout": 1.0,
            "http_read_timeout": 2.0,
        }
    )


def _links(fake: FakePyPI) -> dict[str, list[dict[str, Any]]]:
    index = fake.index
    assert isinstance(index, LinkingIndex)
    return index.links


def _filenames(doc: dict[str, Any]) -> set[str]:
    return {f["filename"] for f in doc["files"]}


# --- point 11: which links are followed -----------------------------------------------------


async def test_links_to_loopback_are_dropped_and_never_fetched(
    client: httpx.AsyncClient, fake: FakePyPI, victim: Victim, caplog: pytest.LogCaptureFixture
) -> None:
    good = publish(fake, "evil", "1.0")
    audit = f"127.0.0.1:{victim.port}/api/v1/audit"
    _links(fake)["evil"] = [
        {"filename": "evil-2.0-py3-none-any.whl", "url": f"http://{audit}", "hashes": {}},
        {"filename": "evil-2.1-py3-none-any.whl", "url": f"https://{audit}", "hashes": {}},
        {
            "filename": "evil-2.2-py3-none-any.whl",
            "url": f"https://localhost:{victim.port}/x",
            "hashes": {},
        },
        {"filename": "evil-2.3-py3-none-any.whl", "url": "https://[::1]/x", "hashes": {}},
    ]
    with caplog.at_level(logging.WARNING, logger="orchard.upstream"):
        doc = (await page(client, "evil")).json()
    assert _filenames(doc) == {good.filename}
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and "dropped 4 link(s)" in dropped[0].getMessage()
    for n in range(4):
        r = await client.get(f"/pypi/proxy/upstream/evil/evil-2.{n}-py3-none-any.whl")
        assert r.status_code == 404, r.text
        assert b"stolen" not in r.content
    assert victim.hits == [] and victim.connections == 0
    # the unlisted names forced one refresh of the page, not one each
    assert fake.hits("/simple/evil/") == 2
    assert (await client.get(f"/pypi/proxy/upstream/evil/{good.filename}")).content == good.content


async def test_allowed_file_host_of_a_database_source_is_followed(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI, victim: Victim
) -> None:
    app.state.settings.upstream_pypi_url = ""  # only the database source
    filename, content, _ = make_wheel("hosted-elsewhere", "1.0")
    victim.body = content
    _links(fake)["hosted-elsewhere"] = [
        {"filename": filename, "url": f"http://127.0.0.1:{victim.port}/f/{filename}", "hashes": {}},
    ]
    fake.index.packages["hosted-elsewhere"] = []
    body = {
        "name": "mirror",
        "format": "pypi",
        "url": fake.url,
        "file_hosts": [f" 127.0.0.1:{victim.port} ", "Files.Example.TEST."],
    }
    r = await client.post("/api/v1/upstreams", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["file_hosts"] == [f"127.0.0.1:{victim.port}", "files.example.test"]
    assert (await client.get("/api/v1/upstreams/mirror")).json()["file_hosts"] == [
        f"127.0.0.1:{victim.port}",
        "files.example.test",
    ]
    doc = (await page(client, "hosted-elsewhere")).json()
    assert _filenames(doc) == {filename}
    r = await client.get(f"/pypi/proxy/upstream/hosted-elsewhere/{filename}")
    assert r.status_code == 200 and r.content == content
    assert victim.hits == [f"/f/{filename}"]

    # Taking the host off the list drops the link, also from the page cached before.
    r = await client.patch("/api/v1/upstreams/mirror", json={"file_hosts": []})
    assert r.status_code == 200 and r.json()["file_hosts"] == []
    other = filename.replace("1.0", "1.1")
    _links(fake)["hosted-elsewhere"].append(
        {"filename": other, "url": f"http://127.0.0.1:{victim.port}/f/{other}", "hashes": {}}
    )
    assert (await client.get(f"/pypi/proxy/upstream/hosted-elsewhere/{other}")).status_code == 404
    assert victim.hits == [f"/f/{filename}"]


@pytest.mark.parametrize(
    "hosts",
    [
        ["not a host"],
        ["http://h.example"],
        ["h.example/path"],
        ["user@h.example"],
        ["h.example:99999"],
        ["-bad.example"],
        [f"h{i}.example" for i in range(51)],
    ],
)
async def test_bad_file_hosts_are_refused(client: httpx.AsyncClient, hosts: list[str]) -> None:
    body = {
        "name": "bad",
        "format": "pypi",
        "url": "http://127.0.0.1:9/simple",
        "file_hosts": hosts,
    }
    r = await client.post("/api/v1/upstreams", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_settings_file_hosts_allow_a_host(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI, victim: Victim
) -> None:
    filename, content, _ = make_wheel("cdn-pkg", "1.0")
    victim.body = content
    fake.index.packages["cdn-pkg"] = []
    _links(fake)["cdn-pkg"] = [
        {"filename": filename, "url": f"http://127.0.0.1:{victim.port}/f/{filename}", "hashes": {}},
    ]
    assert _filenames((await page(client, "cdn-pkg")).json()) == set()
    app.state.settings.upstream_pypi_file_hosts = f"127.0.0.1:{victim.port}"
    await sources.invalidate(app.state.cache)
    await proxy_index.expire(upstream_context(app), "cdn-pkg")
    assert _filenames((await page(client, "cdn-pkg")).json()) == {filename}
    r = await client.get(f"/pypi/proxy/upstream/cdn-pkg/{filename}")
    assert r.status_code == 200 and r.content == content


async def test_redirect_to_loopback_is_not_followed(
    client: httpx.AsyncClient, fake: FakePyPI, victim: Victim
) -> None:
    """A link on the upstream's own origin that redirects elsewhere: the
    redirect obeys the same rule as a link."""
    fake.index.packages["hop"] = []
    filename = "hop-1.0-py3-none-any.whl"
    own = fake.url.removesuffix("/simple")
    _links(fake)["hop"] = [
        {"filename": filename, "url": f"{own}/redirect/{filename}", "hashes": {}}
    ]
    target = f"http://127.0.0.1:{victim.port}/api/v1/audit"
    handler = fake._server.RequestHandlerClass if fake._server else None
    assert handler is not None
    original = handler.do_GET

    def do_get(self: BaseHTTPRequestHandler) -> None:
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        original(self)  # type: ignore[arg-type]

    handler.do_GET = do_get  # type: ignore[method-assign]
    assert _filenames((await page(client, "hop")).json()) == {filename}
    r = await client.get(f"/pypi/proxy/upstream/hop/{filename}")
    assert r.status_code == 502, r.text
    assert b"stolen" not in r.content
    assert victim.hits == [] and victim.connections == 0


async def test_public_host_resolving_to_loopback_is_not_connected(
    client: httpx.AsyncClient, fake: FakePyPI, victim: Victim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no file hosts allowed, an https link to a name is kept, but the
    name is resolved and every address checked before connecting."""
    real = socket.getaddrinfo

    def fake_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "files.example.test":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    fake.index.packages["rebind"] = []
    filename = "rebind-1.0-py3-none-any.whl"
    _links(fake)["rebind"] = [
        {
            "filename": filename,
            "url": f"https://files.example.test:{victim.port}/{filename}",
            "hashes": {},
        },
    ]
    assert _filenames((await page(client, "rebind")).json()) == {filename}
    r = await client.get(f"/pypi/proxy/upstream/rebind/{filename}")
    assert r.status_code == 502, r.text
    assert victim.hits == [] and victim.connections == 0


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://up.example/files/a.whl", True),  # own origin
        ("https://up.example/files/a.whl", False),  # another origin, not listed
        ("https://cdn.example/a.whl", True),
        ("https://cdn.example:8443/a.whl", False),
        ("http://cdn.example/a.whl", True),  # a listed host: either scheme's default port
        ("https://mirror.example:8443/a.whl", True),
        ("https://169.254.169.254/latest", False),
    ],
)
def test_link_rule_with_file_hosts(url: str, allowed: bool) -> None:
    rule = LinkRule("http://u:p@up.example/simple", ("cdn.example", "mirror.example:8443"))
    assert rule.allows_link(url) is allowed


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.example/a.whl", True),
        ("http://files.example/a.whl", False),
        ("https://127.0.0.1/a.whl", False),
        ("https://10.1.2.3/a.whl", False),
        ("https://169.254.169.254/a.whl", False),
        ("https://[::1]/a.whl", False),
        ("https://[::ffff:127.0.0.1]/a.whl", False),
        ("https://[fe80::1]/a.whl", False),
        ("https://localhost/a.whl", False),
        ("https://a.localhost/a.whl", False),
        ("https://8.8.8.8/a.whl", True),
        ("ftp://files.example/a.whl", False),
    ],
)
def test_link_rule_without_file_hosts(url: str, allowed: bool) -> None:
    assert LinkRule("https://up.example/simple").allows_link(url) is allowed


# --- point 6: credentials in upstream URLs --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@h.example:8443/simple", "https://***@h.example:8443/simple"),
        ("https://tok@h.example/simple", "https://***@h.example/simple"),
        ("https://h.example/simple?token=abc&x", "https://h.example/simple?token=***&***"),
        ("https://h.example/simple", "https://h.example/simple"),
        ("https://h.example:bad/simple", "<not a valid URL>"),
    ],
)
def test_mask(url: str, shown: str) -> None:
    assert mask(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        f"https://h.example/simple?token={SECRET}",
        f"https://h.example/simple#{SECRET}",
        f"ftp://h.example/{SECRET}",
        f"https://h.example/{SECRET} x",
        f"https://h:{SECRET}/",
    ],
)
def test_settings_refuse_bad_upstream_urls_without_echoing_them(url: str) -> None:
    for field in ("upstream_pypi_url", "upstream_npm_url", "upstream_go_url"):
        with pytest.raises(ValidationError) as caught:
            Settings(**{field: url})
        assert field in str(caught.value)
        assert SECRET not in str(caught.value)


def test_settings_keep_user_info_and_normalise_file_hosts() -> None:
    s = Settings(
        upstream_pypi_url=f"https://__token__:{SECRET}@h.example/simple/",
        upstream_pypi_file_hosts="files.example, Mirror.example:8443 ",
    )
    assert s.upstream_pypi_url == f"https://__token__:{SECRET}@h.example/simple"
    assert s.upstream_pypi_file_hosts == "files.example,mirror.example:8443"
    assert SECRET not in json.dumps(s.public())
    assert Settings(upstream_pypi_url="").upstream_pypi_url == ""
    with pytest.raises(ValidationError):
        Settings(upstream_pypi_file_hosts="https://files.example/")


def test_api_refuses_credentials_and_queries() -> None:
    with pytest.raises(ValueError, match="credentials"):
        check_upstream_url(f"https://u:{SECRET}@h.example/", credentials_allowed=False)
    with pytest.raises(ValueError, match="query") as caught:
        check_upstream_url(f"https://h.example/?t={SECRET}", credentials_allowed=False)
    assert SECRET not in str(caught.value)
    assert parse_file_hosts("a.example b.example,a.example") == ("a.example", "b.example")


async def test_discovered_url_is_logged_masked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sources, "_discovered", {})
    monkeypatch.setitem(
        sources.DISCOVERERS, "pypi", lambda: f"https://user:{SECRET}@pip.example/simple"
    )
    monkeypatch.setitem(sources.DISCOVERERS, "npm", lambda: f"https://npm.example/?_auth={SECRET}")
    with caplog.at_level(logging.DEBUG, logger="orchard.upstream"):
        assert await sources.discovered_url("pypi") == (f"https://user:{SECRET}@pip.example/simple")
        assert await sources.discovered_url("npm") is None  # a query: refused, as in the API
    assert SECRET not in caplog.text
    assert "https://***@pip.example/simple" in caplog.text


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app of ``settings`` and an anonymous client of it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = SettlingTransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield app, c


async def test_url_credentials_appear_nowhere(
    stack_settings: Settings,
    fake: FakePyPI,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = fake.url.replace("http://", f"http://__token__:{SECRET}@")
    settings = stack_settings.model_copy(update={"upstream_pypi_url": url})
    expected = "Basic " + base64.b64encode(f"__token__:{SECRET}".encode()).decode()
    fake.index.require_auth = expected
    wheel = publish(fake, "private-dep", "1.0")
    with caplog.at_level(logging.DEBUG):
        async with serving(settings) as (app, client):
            anonymous = await client.get("/health")
            assert anonymous.status_code == 200
            doc = (await page(client, "private-dep")).json()
            assert _filenames(doc) == {wheel.filename}
            assert (await client.get(doc["files"][0]["url"])).content == wheel.content
            fake.index.status = 500  # failures log too
            await client.get("/pypi/proxy/upstream/private-dep/private-dep-9.0-py3-none-any.whl")
            client.headers.update(bearer(await make_token(app, "admin")))
            admin = await client.get("/health")
            listed = await client.get("/api/v1/upstreams")
            assert listed.status_code == 200
    # anonymous /health: no upstream URL at all; admins: masked
    upstreams = anonymous.json()["upstreams"]
    assert upstreams and all("url" not in u for u in upstreams)
    assert str(fake.port) not in anonymous.text
    pypi = next(u for u in admin.json()["upstreams"] if u["name"] == "pypi")
    assert pypi["url"] == f"http://***@127.0.0.1:{fake.port}/simple"
    out, err = capfd.readouterr()
    for text in (anonymous.text, admin.text, listed.text, caplog.text, out, err):
        assert SECRET not in text
    assert fake.index.headers["/simple/private-dep/"]["authorization"] == expected


async def test_restricted_token_sees_no_upstream_urls(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    token = await make_token(app, "admin", scope="read", projects=["proxy"])
    restricted = await anon_client.get("/health", headers=bearer(token))
    assert all("url" not in u for u in restricted.json()["upstreams"])
    assert str(fake.port) not in restricted.text
    assert str(fake.port) in (await client.get("/health")).text


async def test_the_client_obeys_the_rule(victim: Victim) -> None:
    """The upstream client refuses a URL the rule does not allow before
    connecting, and fetches a trusted one (tests/integration/
    test_upstream_client.py covers redirects, names and forward proxies)."""
    from orchard.upstream.client import create_http_client
    from orchard.upstream.errors import BlockedAddress

    client = create_http_client(Settings(upstream_pypi_url=""))
    own = f"http://127.0.0.1:{victim.port}"
    try:
        for url in (
            f"http://127.0.0.1:{victim.port + 1}/x",
            f"https://127.0.0.1:{victim.port}/x",
            f"https://localhost:{victim.port}/x",
        ):
            with pytest.raises(BlockedAddress):
                async with client.stream("GET", url, None, LinkRule("http://up.example/simple")):
                    pass
        assert victim.connections == 0
        async with client.stream("GET", f"{own}/ok", None, LinkRule(f"{own}/simple")) as response:
            assert response.status_code == 200
        assert victim.hits == ["/ok"]
    finally:
        await client.aclose()
