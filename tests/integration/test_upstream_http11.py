"""The lean upstream HTTP/1.1 client (upstream/http11.py) against scripted
servers on 127.0.0.1: keep-alive, body framings, decoding, redirects and
credentials, timeouts, truncation, flow control, the pool's bounds, and the
httpx fallback when the environment names a proxy."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from orchard.settings import Settings
from orchard.upstream import http11
from orchard.upstream.client import create_http_client
from orchard.upstream.proxied import ProxiedPool, proxy_configured

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A TCP server on 127.0.0.1 that runs ``handler`` per connection and
    records the requests (head bytes) it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def __aenter__(self) -> Scripted:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.writers.add(writer)
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
                self.writers.discard(writer)

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
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


def pool(
    max_connections: int = 10, connect_timeout: float = 2.0, read_timeout: float = 2.0
) -> http11.Pool:
    return http11.Pool(
        http11.Limits(max_connections, 5, connect_timeout, read_timeout, "orchard-test")
    )


async def body_of(p: http11.Pool, url: str, headers: dict[str, str] | None = None) -> bytes:
    async with p.stream("GET", url, headers) as response:
        return b"".join([chunk async for chunk in response.aiter_bytes()])


def keep_answering(make: Callable[[bytes], bytes]) -> Callable[[Scripted], Handler]:
    def bind(server: Scripted) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                head = await server.read_request(reader)
                writer.write(make(head))
                await writer.drain()

        return handler

    return bind


def answer_once(raw: bytes) -> Callable[[Scripted], Handler]:
    """Each connection: one request, ``raw`` back, then the connection closes."""

    def bind(server: Scripted) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(raw)
            await writer.drain()

        return handler

    return bind


async def scripted(bind: Callable[[Scripted], Handler]) -> Scripted:
    server = Scripted(lambda r, w: asyncio.sleep(0))
    server.handler = bind(server)
    return server


async def test_keep_alive_reuses_one_connection_and_sends_host_and_agent() -> None:
    server = await scripted(keep_answering(lambda head: respond(b"hello")))
    async with server:
        p = pool()
        for _ in range(3):
            assert await body_of(p, server.url + "/simple/a/") == b"hello"
        await p.aclose()
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("GET /simple/a/ HTTP/1.1\r\n")
    assert f"Host: {server.url.removeprefix('http://')}\r\n" in first
    assert "User-Agent: orchard-test\r\n" in first


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
async def test_body_framings_and_encodings(raw: bytes, expected: bytes) -> None:
    server = await scripted(keep_answering(lambda head: raw))
    async with server:
        p = pool()
        assert await body_of(p, server.url + "/x") == expected
        assert await body_of(p, server.url + "/x") == expected  # and the connection is reusable
        await p.aclose()
    assert server.connections == 1


def dribbling(body: bytes, piece: int) -> Callable[[Scripted], Handler]:
    """Each request: the head, then ``body`` in pieces of ``piece`` bytes, each
    its own write (so the client reads the body in many parts)."""

    def bind(server: Scripted) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
                for start in range(0, len(body), piece):
                    writer.write(body[start : start + piece])
                    await writer.drain()
                    await asyncio.sleep(0)

        return handler

    return bind


async def test_body_by_content_length_in_many_reads_is_whole_and_reusable() -> None:
    body = bytes(range(256)) * 4000  # about 1 MB, in pieces of 7,001 bytes
    server = await scripted(dribbling(body, 7001))
    async with server:
        p = pool()
        for _ in range(3):
            assert await body_of(p, server.url + "/big") == body
        await p.aclose()
    assert server.connections == 1


async def test_bytes_after_the_content_length_are_dropped_with_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)  # the head first, then the body with junk behind it
        writer.write(b"0123456789JUNK")
        await writer.drain()
        await reader.read()  # the client must close

    server = Scripted(handler)
    async with server:
        p = pool()
        assert await body_of(p, server.url + "/a") == b"0123456789"
        assert p.stats() == {"in_use": 0, "idle": 0}  # never reused after junk
        await p.aclose()


async def test_bytes_after_the_answer_in_the_same_packet_are_dropped_too() -> None:
    server = await scripted(keep_answering(lambda head: respond(b"0123456789") + b"JUNK"))
    async with server:
        p = pool()
        for _ in range(2):  # each time a new connection: the spoiled one is not kept
            assert await body_of(p, server.url + "/a") == b"0123456789"
            assert p.stats() == {"in_use": 0, "idle": 0}
        await p.aclose()
    assert server.connections == 2


async def test_body_until_close_is_complete_and_not_reused() -> None:
    server = await scripted(
        answer_once(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    )
    async with server:
        p = pool()
        assert await body_of(p, server.url + "/a") == b"until the end"
        assert await body_of(p, server.url + "/b") == b"until the end"
        assert p.stats() == {"in_use": 0, "idle": 0}
        await p.aclose()
    assert server.connections == 2


async def test_truncated_body_is_an_error_and_the_connection_is_dropped() -> None:
    server = await scripted(
        answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
    )
    async with server:
        p = pool()
        with pytest.raises(http11.RemoteProtocolError):
            await body_of(p, server.url + "/a")
        assert p.stats() == {"in_use": 0, "idle": 0}
        await p.aclose()


async def test_malformed_answer_is_a_protocol_error() -> None:
    server = await scripted(keep_answering(lambda head: b"NOT HTTP AT ALL\r\n\r\n"))
    async with server:
        p = pool()
        with pytest.raises(http11.RemoteProtocolError):
            await body_of(p, server.url + "/a")
        await p.aclose()


async def test_endless_headers_are_refused_with_bounded_memory() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
        for _ in range(64):  # 4 MiB of one header value, never ended
            writer.write(b"a" * 65536)
            await writer.drain()

    server = Scripted(handler)
    async with server:
        p = pool()
        with pytest.raises(http11.RemoteProtocolError, match="too large"):
            await body_of(p, server.url + "/a")
        assert p.stats() == {"in_use": 0, "idle": 0}
        await p.aclose()


async def test_read_timeout_when_the_upstream_stalls() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(5)

    server = Scripted(handler)
    async with server:
        p = pool(read_timeout=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(http11.ReadTimeout):
            await body_of(p, server.url + "/a")
        assert loop.time() - started < 2
        await p.aclose()


async def test_connect_refused_is_a_connect_error() -> None:
    server = Scripted(lambda r, w: asyncio.sleep(0))
    async with server:
        url = server.url
    p = pool()
    with pytest.raises(http11.ConnectError):
        await body_of(p, url + "/a")
    await p.aclose()


async def test_redirects_keep_credentials_within_their_origin() -> None:
    async def target_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await target.read_request(reader)
            writer.write(respond(b"moved here"))
            await writer.drain()

    async def origin_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await origin.read_request(reader)
            if b"GET /first" in head:
                writer.write(respond(b"", status="302 Found", extra="Location: /second\r\n"))
            else:
                location = f"Location: {target.url}/file\r\n"
                writer.write(respond(b"", status="301 Moved", extra=location))
            await writer.drain()

    target, origin = Scripted(target_handler), Scripted(origin_handler)
    async with target, origin:
        p = pool()
        async with p.stream("GET", origin.url + "/first", {"Authorization": "Bearer s3cret"}) as r:
            assert r.status_code == 200
            assert r.url == target.url + "/file"
            assert b"".join([c async for c in r.aiter_bytes()]) == b"moved here"
        await p.aclose()
    assert all(b"Bearer s3cret" in head for head in origin.requests)
    assert len(origin.requests) == 2
    assert not any(b"s3cret" in head for head in target.requests)


async def test_endless_redirects_stop() -> None:
    server = await scripted(
        keep_answering(lambda head: respond(b"", status="302 Found", extra="Location: /again\r\n"))
    )
    async with server:
        p = pool()
        with pytest.raises(http11.TooManyRedirects):
            await body_of(p, server.url + "/start")
        await p.aclose()


async def test_a_kept_connection_closed_by_the_upstream_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(respond(b"once"))  # keep-alive announced, then closed while idle
        await writer.drain()
        await asyncio.sleep(0.05)

    server = Scripted(handler)
    async with server:
        p = pool()
        assert await body_of(p, server.url + "/a") == b"once"
        await asyncio.sleep(0.2)
        assert await body_of(p, server.url + "/b") == b"once"
        await p.aclose()
    assert server.connections == 2


async def test_header_injection_is_refused_before_anything_is_sent() -> None:
    server = await scripted(keep_answering(lambda head: respond(b"x")))
    async with server:
        p = pool()
        with pytest.raises(http11.InvalidRequest):
            await body_of(p, server.url + "/a", {"Authorization": "Bearer x\r\nX-Evil: 1"})
        await p.aclose()
    assert server.requests == []


async def test_non_http_urls_are_refused() -> None:
    p = pool()
    with pytest.raises(http11.InvalidRequest):
        await body_of(p, "file:///etc/passwd")
    await p.aclose()


async def test_large_body_is_paced_by_the_reader() -> None:
    size = 8 * 1024 * 1024
    block = b"x" * 65536

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    server = Scripted(handler)
    async with server:
        p = pool()
        received = 0
        most_buffered = 0
        async with p.stream("GET", server.url + "/big") as response:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                conn = next(iter(p._in_use))
                most_buffered = max(most_buffered, conn.buffered)
                await asyncio.sleep(0.002)  # a slow consumer
        await p.aclose()
    assert received == size
    assert most_buffered < http11.HIGH_WATER + 512 * 1024


async def test_compression_bomb_comes_out_in_bounded_pieces() -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    server = await scripted(
        keep_answering(lambda head: respond(bomb, extra="Content-Encoding: gzip\r\n"))
    )
    async with server:
        p = pool()
        largest = total = 0
        async with p.stream("GET", server.url + "/bomb") as response:
            async for piece in response.aiter_bytes():
                largest = max(largest, len(piece))
                total += len(piece)
                if total > 4 * 1024 * 1024:
                    break  # a capped reader stops here: nothing more is inflated
        await p.aclose()
    assert largest <= http11.DECODED_PIECE


async def test_unknown_content_encoding_is_a_decoding_error() -> None:
    server = await scripted(
        keep_answering(lambda head: respond(b"??", extra="Content-Encoding: br\r\n"))
    )
    async with server:
        p = pool()
        with pytest.raises(http11.DecodingError):
            await body_of(p, server.url + "/a")
        await p.aclose()


async def test_pool_bounds_connections_in_use() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\na")
        await writer.drain()
        await release.wait()
        writer.write(b"b")
        await writer.drain()

    server = Scripted(handler)
    async with server:
        p = pool(max_connections=1, connect_timeout=0.3)

        async def first() -> bytes:
            return await body_of(p, server.url + "/one")

        task = asyncio.create_task(first())
        await asyncio.sleep(0.1)
        with pytest.raises(http11.PoolTimeout):
            await body_of(p, server.url + "/two")
        release.set()
        assert await task == b"ab"
        await p.aclose()


async def test_closed_client_refuses() -> None:
    p = pool()
    await p.aclose()
    with pytest.raises(http11.ClientClosed):
        await body_of(p, "http://127.0.0.1:9/")


def test_proxy_variables_select_the_httpx_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    assert not proxy_configured()
    assert isinstance(create_http_client(Settings(upstream_pypi_url="")).transport, http11.Pool)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    assert proxy_configured()


async def test_requests_go_through_the_configured_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain-HTTP proxy gets the request in absolute form (the fake proxy
    answers it itself instead of forwarding)."""
    server = await scripted(keep_answering(lambda head: respond(b"via the proxy")))
    async with server:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", server.url)
        monkeypatch.setenv("http_proxy", server.url)
        client = create_http_client(Settings(upstream_pypi_url=""))
        assert isinstance(client.transport, ProxiedPool)
        async with client.stream("GET", "http://upstream.test/simple/a/") as response:
            assert response.status_code == 200
            assert b"".join([c async for c in response.aiter_bytes()]) == b"via the proxy"
        await client.aclose()
    assert server.requests[0].startswith(b"GET http://upstream.test/simple/a/ HTTP/1.1")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the certificate is its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orchard test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
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
    return cert_path, key_path


async def test_https_upstream_verified_against_the_configured_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(respond(b"over TLS"))
            await writer.drain()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        untrusting = pool()  # the system's CA store does not know this certificate
        with pytest.raises(http11.ConnectError):
            await body_of(untrusting, f"https://127.0.0.1:{port}/simple/a/")
        await untrusting.aclose()

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusting = pool()
        for _ in range(2):
            assert await body_of(trusting, f"https://127.0.0.1:{port}/simple/a/") == b"over TLS"
        assert trusting.stats() == {"in_use": 0, "idle": 1}  # one TLS connection, kept
        await trusting.aclose()
    finally:
        server.close()


@pytest.mark.parametrize("together", [False, True], ids=["apart", "in-one-packet"])
async def test_interim_answers_are_skipped(together: bool) -> None:
    """A 100/103 before the answer is not the answer, and the connection
    stays in step for the next request."""

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

    server = Scripted(handler)
    async with server:
        p = pool()
        async with p.stream("GET", server.url + "/a") as response:
            assert response.status_code == 200
            assert "link" not in response.headers
            assert b"".join([c async for c in response.aiter_bytes()]) == b"body of /a"
        assert await body_of(p, server.url + "/b") == b"body of /b"
        await p.aclose()
    assert server.connections == 1


async def test_credentials_in_the_url_are_sent_as_basic_auth_to_that_origin_only() -> None:
    async def target_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await target.read_request(reader)
            writer.write(respond(b"file"))
            await writer.drain()

    async def index_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await index.read_request(reader)
            writer.write(respond(b"", status="302 Found", extra=f"Location: {target.url}/f\r\n"))
            await writer.drain()

    target, index = Scripted(target_handler), Scripted(index_handler)
    async with target, index:
        p = pool()
        private = index.url.replace("http://", "http://alice:t%40ken@") + "/simple/x/"
        assert await body_of(p, private) == b"file"
        await p.aclose()
    # alice:t@ken
    assert b"Authorization: Basic YWxpY2U6dEBrZW4=\r\n" in index.requests[0]
    assert b"@" not in index.requests[0].split(b"\r\n")[0]  # not in the request line
    assert not any(b"Authorization" in head for head in target.requests)


async def test_endless_trailers_are_refused_with_bounded_memory() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: ")
        for _ in range(64):
            writer.write(b"t" * 65536)
            await writer.drain()

    server = Scripted(handler)
    async with server:
        p = pool()
        with pytest.raises(http11.RemoteProtocolError, match="too large"):
            await body_of(p, server.url + "/a")
        await p.aclose()


async def test_a_redirect_to_an_unusable_location_is_an_upstream_error() -> None:
    server = await scripted(
        keep_answering(
            lambda head: respond(b"", status="302 Found", extra="Location: http://[::1\r\n")
        )
    )
    async with server:
        p = pool()
        with pytest.raises(http11.HTTPError):
            await body_of(p, server.url + "/a")
        await p.aclose()


async def test_other_transfer_codings_end_with_the_connection() -> None:
    server = await scripted(
        answer_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nto the end")
    )
    async with server:
        p = pool()
        assert await body_of(p, server.url + "/a") == b"to the end"
        await p.aclose()


async def test_redirects_within_an_origin_keep_the_connection() -> None:
    def answer(head: bytes) -> bytes:
        if b"GET /old" in head:
            return respond(b"moved", status="301 Moved", extra="Location: /new\r\n")
        return respond(b"here")

    server = await scripted(keep_answering(answer))
    async with server:
        p = pool()
        assert await body_of(p, server.url + "/old") == b"here"
        assert await body_of(p, server.url + "/old") == b"here"
        await p.aclose()
    assert server.connections == 1
    assert len(server.requests) == 4
