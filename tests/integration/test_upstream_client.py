"""The upstream HTTP client (upstream/client.py, aiohttp underneath) against
scripted servers on 127.0.0.1 over real HTTP: keep-alive, body framings and
decoding, answers that are slow, cut short, or framed twice, redirects
(each hop under the source's link rule), TLS against a CA made here, and a
forward proxy named by the environment."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import os
import socket
import ssl
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from orchard.settings import Settings
from orchard.upstream import errors
from orchard.upstream.client import PIECE, Limits, UpstreamClient, create_http_client
from orchard.upstream.urls import LinkRule

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


class Scripted:
    """A TCP server on 127.0.0.1 (TLS with ``context``) that runs ``handler``
    per connection and records the request heads it read."""

    def __init__(self, handler: Handler, context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.context = context
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Scripted:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.writers.add(writer)
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            except ssl.SSLError:
                pass
            finally:
                writer.close()
                self.writers.discard(writer)

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await asyncio.sleep(0.01)  # let the handlers see their connections end

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head


def respond(body: bytes, *, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def keep_answering(server: Scripted, make: Callable[[bytes], bytes]) -> Scripted:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await server.read_request(reader)
            writer.write(make(head))
            await writer.drain()

    server.handler = handler
    return server


def answering(make: Callable[[bytes], bytes]) -> Scripted:
    return keep_answering(Scripted(lambda r, w: asyncio.sleep(0)), make)


def answer_once(raw: bytes) -> Scripted:
    """Each connection: one request, ``raw`` back, then the connection closes."""
    server = Scripted(lambda r, w: asyncio.sleep(0))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(raw)
        await writer.drain()

    server.handler = handler
    return server


class NamesResolver(AbstractResolver):
    """Test host names (``*.test``) that resolve to 127.0.0.1, as a name on
    the internet could (DNS rebinding, a hostile record)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        address = "127.0.0.1" if host.endswith(".test") else host
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., UpstreamClient]]:
    made: list[UpstreamClient] = []

    def make(
        max_connections: int = 10,
        connect_timeout: float = 2.0,
        read_timeout: float = 2.0,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> UpstreamClient:
        limits = Limits(max_connections, 5, connect_timeout, read_timeout, "orchard-test")
        client = UpstreamClient(limits, resolver, ssl_context)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def body_of(
    client: UpstreamClient,
    url: str,
    headers: dict[str, str] | None = None,
    rule: LinkRule | None = None,
) -> bytes:
    async with client.stream("GET", url, headers, rule) as response:
        return b"".join([chunk async for chunk in response.aiter_bytes()])


# --- framing and keep-alive -----------------------------------------------------------------


async def test_keep_alive_reuses_one_connection_and_sends_host_and_agent(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = answering(lambda head: respond(b"hello"))
    async with server:
        client = make_client()
        for _ in range(3):
            assert await body_of(client, server.url + "/simple/a/") == b"hello"
    assert server.connections == 1
    first = server.requests[0].decode().lower()
    assert first.startswith("get /simple/a/ http/1.1\r\n")
    assert f"host: 127.0.0.1:{server.port}\r\n" in first
    assert "user-agent: orchard-test\r\n" in first
    assert "cookie" not in first


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
        ),
        (
            respond(gzip.compress(b"zipped page" * 100), extra="Content-Encoding: gzip\r\n"),
            b"zipped page" * 100,
        ),
        (respond(zlib.compress(b"deflated"), extra="Content-Encoding: deflate\r\n"), b"deflated"),
    ],
    ids=["chunked", "gzip", "deflate"],
)
async def test_body_framings_and_encodings(
    raw: bytes, expected: bytes, make_client: Callable[..., UpstreamClient]
) -> None:
    server = answering(lambda head: raw)
    async with server:
        client = make_client()
        assert await body_of(client, server.url + "/x") == expected
        assert await body_of(client, server.url + "/x") == expected  # the connection is reusable
    assert server.connections == 1


async def test_content_length_and_chunked_together_are_refused(
    make_client: Callable[..., UpstreamClient],
) -> None:
    """Both framings at once (a request-smuggling shape): RFC 9112 §6.3 lets
    a client refuse the answer; it is never served as the 5 bytes
    Content-Length names, and its connection is not reused."""
    chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    server = answering(lambda head: raw)
    async with server:
        client = make_client()
        for _ in range(2):
            with pytest.raises(errors.RemoteProtocolError, match="Transfer-Encoding"):
                await body_of(client, server.url + "/smuggle")
        assert client.stats() == {"in_use": 0}
    assert server.connections == 2


async def test_body_by_content_length_in_many_reads_is_whole_and_reusable(
    make_client: Callable[..., UpstreamClient],
) -> None:
    body = bytes(range(256)) * 4000  # about 1 MB, in pieces of 7,001 bytes
    server = Scripted(lambda r, w: asyncio.sleep(0))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            for start in range(0, len(body), 7001):
                writer.write(body[start : start + 7001])
                await writer.drain()
                await asyncio.sleep(0)

    server.handler = handler
    async with server:
        client = make_client()
        for _ in range(3):
            assert await body_of(client, server.url + "/big") == body
    assert server.connections == 1


async def test_body_until_close_is_complete(make_client: Callable[..., UpstreamClient]) -> None:
    server = answer_once(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    async with server:
        client = make_client()
        assert await body_of(client, server.url + "/a") == b"until the end"
        assert await body_of(client, server.url + "/b") == b"until the end"
    assert server.connections == 2


@pytest.mark.parametrize("together", [False, True], ids=["apart", "in-one-packet"])
async def test_interim_answers_are_skipped(
    together: bool, make_client: Callable[..., UpstreamClient]
) -> None:
    server = Scripted(lambda r, w: asyncio.sleep(0))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await server.read_request(reader)
            body = b"body of " + head.split(b" ")[1]
            interim = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
            if together:
                writer.write(interim + respond(body))
            else:
                writer.write(interim)
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(respond(body))
            await writer.drain()

    server.handler = handler
    async with server:
        client = make_client()
        async with client.stream("GET", server.url + "/a") as response:
            assert response.status_code == 200
            assert b"".join([c async for c in response.aiter_bytes()]) == b"body of /a"
        assert await body_of(client, server.url + "/b") == b"body of /b"


# --- answers cut short, malformed, slow ------------------------------------------------------


async def test_connection_dropped_mid_body_is_an_error(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
    async with server:
        client = make_client()
        with pytest.raises(errors.RemoteProtocolError):
            await body_of(client, server.url + "/a")
        assert client.stats() == {"in_use": 0}


async def test_chunked_body_dropped_mid_chunk_is_an_error(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = answer_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\npart")
    async with server:
        client = make_client()
        with pytest.raises(errors.RemoteProtocolError):
            await body_of(client, server.url + "/a")


async def test_malformed_answer_is_a_protocol_error(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = answering(lambda head: b"NOT HTTP AT ALL\r\n\r\n")
    async with server:
        client = make_client()
        with pytest.raises(errors.RemoteProtocolError):
            await body_of(client, server.url + "/a")


async def test_endless_headers_are_refused_with_bounded_memory(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = Scripted(lambda r, w: asyncio.sleep(0))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
        for _ in range(64):  # 4 MiB of one header value, never ended
            writer.write(b"a" * 65536)
            await writer.drain()

    server.handler = handler
    async with server:
        client = make_client()
        with pytest.raises(errors.RemoteProtocolError):
            await body_of(client, server.url + "/a")


async def test_read_timeout_when_the_upstream_stalls_mid_body(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = Scripted(lambda r, w: asyncio.sleep(0))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(5)

    server.handler = handler
    async with server:
        client = make_client(read_timeout=0.3)
        started = asyncio.get_running_loop().time()
        with pytest.raises(errors.ReadTimeout):
            await body_of(client, server.url + "/a")
        assert asyncio.get_running_loop().time() - started < 2


async def test_read_timeout_when_the_upstream_never_answers(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = Scripted(lambda r, w: asyncio.sleep(0))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await asyncio.sleep(5)

    server.handler = handler
    async with server:
        client = make_client(read_timeout=0.3)
        with pytest.raises(errors.ReadTimeout, match=r"."):
            await body_of(client, server.url + "/a")


async def test_connect_refused_is_a_connect_error(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = Scripted(lambda r, w: asyncio.sleep(0))
    async with server:
        url = server.url
    with pytest.raises(errors.ConnectError):
        await body_of(make_client(), url + "/a")


async def test_the_connection_limit_bounds_waiting(
    make_client: Callable[..., UpstreamClient],
) -> None:
    release = asyncio.Event()
    server = Scripted(lambda r, w: asyncio.sleep(0))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\na")
        await writer.drain()
        await release.wait()
        writer.write(b"b")
        await writer.drain()

    server.handler = handler
    async with server:
        client = make_client(max_connections=1, connect_timeout=0.3)
        task = asyncio.create_task(body_of(client, server.url + "/one"))
        await asyncio.sleep(0.1)
        with pytest.raises(errors.ConnectTimeout):
            await body_of(client, server.url + "/two")
        release.set()
        assert await task == b"ab"


async def test_compression_bomb_comes_out_in_bounded_pieces(
    make_client: Callable[..., UpstreamClient],
) -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    server = answering(lambda head: respond(bomb, extra="Content-Encoding: gzip\r\n"))
    async with server:
        client = make_client()
        largest = total = 0
        async with client.stream("GET", server.url + "/bomb") as response:
            async for piece in response.aiter_bytes():
                largest = max(largest, len(piece))
                total += len(piece)
                if total > 4 * 1024 * 1024:
                    break  # a capped reader stops here
    assert largest <= PIECE


@pytest.mark.parametrize("encoding", ["br", "x-unknown"])
async def test_an_encoding_not_asked_for_is_refused(
    encoding: str, make_client: Callable[..., UpstreamClient]
) -> None:
    server = answering(lambda head: respond(b"??", extra=f"Content-Encoding: {encoding}\r\n"))
    async with server:
        with pytest.raises(errors.HTTPError):
            await body_of(make_client(), server.url + "/a")
    assert b"Accept-Encoding: gzip, deflate\r\n" in server.requests[0]


async def test_header_injection_is_refused_before_anything_is_sent(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = answering(lambda head: respond(b"x"))
    async with server:
        with pytest.raises(errors.InvalidRequest):
            await body_of(make_client(), server.url + "/a", {"Authorization": "x\r\nX-Evil: 1"})
    assert server.requests == []


async def test_non_http_urls_are_refused(make_client: Callable[..., UpstreamClient]) -> None:
    with pytest.raises(errors.InvalidRequest):
        await body_of(make_client(), "file:///etc/passwd")


async def test_closed_client_refuses(make_client: Callable[..., UpstreamClient]) -> None:
    client = make_client()
    await client.aclose()
    assert client.is_closed
    with pytest.raises(errors.ClientClosed):
        await body_of(client, "http://127.0.0.1:9/")


# --- redirects and credentials ---------------------------------------------------------------


async def test_redirects_keep_credentials_within_their_origin(
    make_client: Callable[..., UpstreamClient],
) -> None:
    target = answering(lambda head: respond(b"moved here"))

    def origin_answer(head: bytes) -> bytes:
        if b"GET /first" in head:
            return respond(b"", status="302 Found", extra="Location: /second\r\n")
        return respond(b"", status="301 Moved", extra=f"Location: {target.url}/file\r\n")

    origin = answering(origin_answer)
    async with target, origin:
        client = make_client()
        headers = {"Authorization": "Bearer s3cret"}
        async with client.stream("GET", origin.url + "/first", headers) as r:
            assert r.status_code == 200
            assert r.url == target.url + "/file"
            assert b"".join([c async for c in r.aiter_bytes()]) == b"moved here"
    assert len(origin.requests) == 2
    assert all(b"Bearer s3cret" in head for head in origin.requests)
    assert origin.connections == 1  # the redirect's connection was kept
    assert not any(b"s3cret" in head for head in target.requests)


async def test_endless_redirects_stop(make_client: Callable[..., UpstreamClient]) -> None:
    server = answering(lambda head: respond(b"", status="302 Found", extra="Location: /again\r\n"))
    async with server:
        with pytest.raises(errors.TooManyRedirects):
            await body_of(make_client(), server.url + "/start")


async def test_a_redirect_to_an_unusable_location_is_an_upstream_error(
    make_client: Callable[..., UpstreamClient],
) -> None:
    server = answering(
        lambda head: respond(b"", status="302 Found", extra="Location: http://[::1\r\n")
    )
    async with server:
        with pytest.raises(errors.RemoteProtocolError):
            await body_of(make_client(), server.url + "/a")


async def test_credentials_in_the_url_are_sent_as_basic_auth_to_that_origin_only(
    make_client: Callable[..., UpstreamClient],
) -> None:
    target = answering(lambda head: respond(b"file"))
    index = answering(lambda head: b"")  # replaced below, once target's URL is known
    async with target, index:
        keep_answering(
            index,
            lambda head: respond(b"", status="302 Found", extra=f"Location: {target.url}/f\r\n"),
        )
        private = index.url.replace("http://", "http://alice:t%40ken@") + "/simple/x/"
        assert await body_of(make_client(), private) == b"file"
    # alice:t@ken
    assert b"Authorization: Basic YWxpY2U6dEBrZW4=\r\n" in index.requests[0]
    assert b"@" not in index.requests[0].split(b"\r\n")[0]  # not in the request line
    assert not any(b"authorization" in head.lower() for head in target.requests)


async def test_each_redirect_hop_obeys_the_link_rule(
    make_client: Callable[..., UpstreamClient],
) -> None:
    """A trusted upstream redirecting to a host the rule does not allow (a
    private address) is refused before anything connects there."""
    victim = answering(lambda head: respond(b"secret"))
    async with victim:
        upstream = answering(
            lambda head: respond(
                b"", status="302 Found", extra=f"Location: http://127.0.0.1:{victim.port}/x\r\n"
            )
        )
        async with upstream:
            rule = LinkRule(upstream.url + "/simple")
            client = make_client()
            with pytest.raises(errors.BlockedAddress):
                await body_of(client, upstream.url + "/simple/a/", rule=rule)
            assert len(upstream.requests) == 1
    assert victim.connections == 0


# --- the connect-time address check ---------------------------------------------------------


def _certificate(tmp: Path, names: list[str]) -> tuple[Path, ssl.SSLContext]:
    """A self-signed CA certificate for 127.0.0.1 and ``names``, and a
    server context that presents it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orchard test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    alt += [x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "upstream.crt", tmp / "upstream.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


async def test_names_resolving_to_private_addresses_are_refused_when_vetted(
    tmp_path: Path, make_client: Callable[..., UpstreamClient]
) -> None:
    """``files.test`` resolves to 127.0.0.1: fetched as the source's own
    origin (trusted), refused as another source's link (vetted), even with a
    kept-alive connection to it in the pool."""
    cert, context = _certificate(tmp_path, ["files.test"])
    server = keep_answering(
        Scripted(lambda r, w: asyncio.sleep(0), context), lambda h: respond(b"f")
    )
    async with server:
        url = f"https://files.test:{server.port}/f.whl"
        names = NamesResolver()
        client = make_client(resolver=names, ssl_context=trusting(cert))
        own = LinkRule(f"https://files.test:{server.port}/simple")
        assert await body_of(client, url, rule=own) == b"f"  # its own origin: trusted
        other = LinkRule("https://index.test/simple")
        assert other.needs_vetting(url)
        with pytest.raises(errors.BlockedAddress, match="non-public"):
            await body_of(client, url, rule=other)
        assert await body_of(client, url, rule=own) == b"f"
        assert names.asked == ["files.test", "files.test"]  # the vetted request resolved anew
    assert server.connections == 1
    assert len(server.requests) == 2


async def test_literal_and_plain_http_hops_outside_the_rule_never_connect(
    make_client: Callable[..., UpstreamClient],
) -> None:
    victim = answering(lambda head: respond(b"secret"))
    async with victim:
        client = make_client()
        rule = LinkRule("http://up.test/simple")
        for url in (
            f"http://127.0.0.1:{victim.port}/x",
            f"https://127.0.0.1:{victim.port}/x",
            f"https://localhost:{victim.port}/x",
            f"https://[::ffff:127.0.0.1]:{victim.port}/x",
        ):
            with pytest.raises(errors.BlockedAddress):
                await body_of(client, url, rule=rule)
        own = LinkRule(f"{victim.url}/simple")
        assert await body_of(client, f"{victim.url}/ok", rule=own) == b"secret"
    assert victim.connections == 1


# --- TLS --------------------------------------------------------------------------------------


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


async def test_https_upstream_verified_against_the_configured_ca(
    tmp_path: Path, make_client: Callable[..., UpstreamClient]
) -> None:
    cert, context = _certificate(tmp_path, [])
    server = keep_answering(
        Scripted(lambda r, w: asyncio.sleep(0), context), lambda h: respond(b"over TLS")
    )
    async with server:
        untrusting = make_client()  # the system's CA store does not know this certificate
        with pytest.raises(errors.ConnectError):
            await body_of(untrusting, server.url + "/simple/a/")

        client = make_client(ssl_context=trusting(cert))
        for _ in range(2):
            assert await body_of(client, server.url + "/simple/a/") == b"over TLS"
    assert len(server.requests) == 2
    assert server.connections == 1  # one kept connection (the refused handshake never got here)


FETCH = """
import asyncio, sys
from orchard.settings import Settings
from orchard.upstream.client import create_http_client

async def main():
    client = create_http_client(Settings(upstream_pypi_url=""))
    try:
        async with client.stream("GET", sys.argv[1]) as response:
            print(b"".join([c async for c in response.aiter_bytes()]).decode())
    finally:
        await client.aclose()

asyncio.run(main())
"""


async def test_ssl_cert_file_of_the_process_is_trusted(tmp_path: Path) -> None:
    """The server's own way: SSL_CERT_FILE set when the process starts."""
    cert, context = _certificate(tmp_path, [])
    server = keep_answering(
        Scripted(lambda r, w: asyncio.sleep(0), context), lambda h: respond(b"trusted")
    )
    async with server:
        env = {**os.environ, "SSL_CERT_FILE": str(cert)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FETCH, server.url + "/a", env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert out.strip() == b"trusted"


# --- forward proxies from the environment -----------------------------------------------------


class ForwardProxy:
    """A tiny forward proxy on 127.0.0.1: absolute-form GETs are forwarded
    (to 127.0.0.1 only), ``CONNECT`` opens a tunnel; what it was asked is kept."""

    def __init__(self) -> None:
        self.asked: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> ForwardProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.asked.append(head)
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ")
            if method == b"CONNECT":
                host, _, port = target.decode().rpartition(":")
                assert host == "127.0.0.1"
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                _, _, rest = target.decode().partition("://")
                hostport, _, path = rest.partition("/")
                host, _, port = hostport.rpartition(":")
                assert host == "127.0.0.1"
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                line = b"%s /%s HTTP/1.1\r\n" % (method, path.encode())
                up_writer.write(line + head.split(b"\r\n", 1)[1])
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, AssertionError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def test_plain_http_goes_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = answering(lambda head: respond(b"via the proxy"))
    async with server, ForwardProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url.replace("http://", "http://me:pw@"))
        client = create_http_client(Settings(upstream_pypi_url=""))
        try:
            assert client.kind == "aiohttp (forward proxy)"
            assert await body_of(client, server.url + "/simple/a/") == b"via the proxy"
        finally:
            await client.aclose()
    assert proxy.asked[0].startswith(f"GET {server.url}/simple/a/ HTTP/1.1".encode())
    assert b"Proxy-Authorization: Basic bWU6cHc=" in proxy.asked[0]  # me:pw
    assert server.requests[0].startswith(b"GET /simple/a/ HTTP/1.1")


async def test_https_is_tunnelled_through_the_proxy_and_no_proxy_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, context = _certificate(tmp_path, [])
    server = keep_answering(
        Scripted(lambda r, w: asyncio.sleep(0), context), lambda h: respond(b"tls")
    )
    async with server, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://me:pw@"))
        limits = Limits.from_settings(Settings(upstream_pypi_url=""))
        client = UpstreamClient(limits, ssl_context=trusting(cert))
        try:
            assert await body_of(client, server.url + "/a") == b"tls"
        finally:
            await client.aclose()
        assert proxy.asked == [proxy.asked[0]]
        assert proxy.asked[0].startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1".encode())
        assert b"Proxy-Authorization: Basic bWU6cHc=" in proxy.asked[0]
        assert b"Proxy-Authorization" not in server.requests[0]  # never past the proxy

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        client = UpstreamClient(limits, ssl_context=trusting(cert))
        try:
            assert await body_of(client, server.url + "/b") == b"tls"
        finally:
            await client.aclose()
    assert len(proxy.asked) == 1  # the second went direct
    assert len(server.requests) == 2


async def test_vetted_hops_are_checked_before_the_proxy_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        names = NamesResolver()
        client = create_http_client(Settings(upstream_pypi_url=""), resolver=names)
        try:
            rule = LinkRule("https://index.test/simple")
            with pytest.raises(errors.BlockedAddress):
                await body_of(client, "https://files.test/f.whl", rule=rule)
        finally:
            await client.aclose()
    assert names.asked == ["files.test"]
    assert proxy.asked == []
