"""Trusting the proxy in front (orchard/forwarded.py): only its own
X-Forwarded-For / -Proto are believed, and the client is the right-most
address it did not add itself."""

from __future__ import annotations

from typing import Any

import pytest

from orchard.forwarded import TrustedProxies
from orchard.settings import Settings


def scope(peer: str | None, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"client": (peer, 5000) if peer else None, "scheme": "http", "headers": list(headers)}


def test_a_trusted_proxy_names_the_client_and_scheme() -> None:
    s = scope("127.0.0.1", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https"))
    assert TrustedProxies("127.0.0.1,::1").relayed(s)
    assert s["client"] == ("203.0.113.7", 0)
    assert s["scheme"] == "https"


def test_anyone_else_keeps_their_own_address() -> None:
    s = scope("198.51.100.9", (b"x-forwarded-for", b"10.0.0.1"), (b"x-forwarded-proto", b"https"))
    assert not TrustedProxies("127.0.0.1").relayed(s)
    assert s["client"] == ("198.51.100.9", 5000)
    assert s["scheme"] == "http"


def test_a_spoofed_hop_before_the_proxy_is_not_believed() -> None:
    # The client sent "X-Forwarded-For: 10.1.1.1"; nginx appended the real address.
    s = scope("10.0.0.2", (b"x-forwarded-for", b"10.1.1.1, 192.0.2.44"))
    assert TrustedProxies("10.0.0.0/24").relayed(s)
    assert s["client"] == ("192.0.2.44", 0)


def test_chained_trusted_proxies_are_skipped() -> None:
    s = scope("10.0.0.2", (b"x-forwarded-for", b"192.0.2.44"), (b"x-forwarded-for", b"10.0.0.3"))
    assert TrustedProxies("10.0.0.0/24").relayed(s)
    assert s["client"] == ("192.0.2.44", 0)


@pytest.mark.parametrize("proto", [b"ftp", b"javascript", b""])
def test_an_odd_scheme_is_ignored(proto: bytes) -> None:
    s = scope("127.0.0.1", (b"x-forwarded-proto", proto))
    assert TrustedProxies("127.0.0.1").relayed(s)
    assert s["scheme"] == "http"


@pytest.mark.parametrize("peer", [None, "not-an-address", "127.0.0.2"])
def test_unknown_peers_are_not_trusted(peer: str | None) -> None:
    assert not TrustedProxies("127.0.0.1").relayed(scope(peer))


def test_empty_trusts_no_one_and_star_everyone() -> None:
    assert not TrustedProxies("").relayed(scope("127.0.0.1"))
    assert TrustedProxies("*").relayed(scope("198.51.100.9"))


def test_a_bad_list_is_refused(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="not a list of addresses or networks"):
        Settings(data_dir=tmp_path, forwarded_allow_ips="127.0.0.1, nginx.internal")
