"""Upstream URLs: checking them, showing them, and which links may be followed.

One place for three rules that settings, the upstreams API, discovery,
``/health`` and the proxy share:

- ``check_upstream_url``: an upstream's base URL is an http(s) URL without a
  query or a fragment (a path is appended to it). User info (``user:token@``,
  as pip configurations carry) is accepted only where the caller says so
  (settings and discovery: it is sent as Basic auth to that origin); the API
  has fields for credentials. The error messages never repeat the URL.
- ``mask``: a URL safe to log and show: user info and query values become
  ``***``.
- ``LinkRule``: the absolute file links of an upstream's page that Orchard
  follows: its own origin and the file hosts an admin allowed for the source;
  with none allowed, any https host whose addresses are all public (checked
  when connecting, redirects included: ``resolver.py``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import SplitResult, urlsplit, urlunsplit

MASK = "***"
MAX_FILE_HOSTS = 50
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_IPV4ISH = re.compile(r"[0-9.]+|0x[0-9a-f.x]+")  # what an IPv4 literal can look like


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError:
        return None
    return parts


def _hostport(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def mask(url: str) -> str:
    """``url`` with its user info and query values replaced by ``***``."""
    parts = _split(url)
    if parts is None:
        return "<not a valid URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{_hostport(parts)}"
    query = parts.query
    if query:
        pairs = []
        for pair in query.split("&"):
            key, sep, _value = pair.partition("=")
            pairs.append(f"{key}={MASK}" if sep else MASK)
        query = "&".join(pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def check_upstream_url(value: str, *, credentials_allowed: bool) -> str:
    """``value`` without a trailing slash, or ValueError saying what is wrong
    (never quoting it: it may hold a secret)."""
    if _UNSAFE.search(value):
        raise ValueError("must not contain spaces or control characters")
    parts = _split(value)
    if parts is None:
        raise ValueError("is not a valid URL (bad host or port)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(
            "must not have a query or a fragment (give credentials as user info or in the "
            "upstream's username/password/token)"
        )
    if not credentials_allowed and (parts.username is not None or parts.password is not None):
        raise ValueError("put credentials in username/password/token, not in the URL")
    return value.rstrip("/")


def _host_entry(entry: str) -> str:
    """One allowed file host, normalised: ``host`` or ``host:port`` (IPv6 in brackets)."""
    raw = entry.strip().lower().rstrip(".")
    parts = _split(f"//{raw}")
    if (
        not raw
        or parts is None
        or not parts.hostname
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
        or raw.endswith(":")
    ):
        raise ValueError(f"{entry.strip()[:100]!r} is not a host or host:port")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
            raise ValueError(f"{entry.strip()[:100]!r} is not a host name") from None
    return _hostport(parts)


def parse_file_hosts(value: str | Iterable[str]) -> tuple[str, ...]:
    """Allowed file hosts from a list, or a string separated by commas or spaces."""
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    hosts: list[str] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        if not isinstance(item, str):
            raise ValueError("file hosts must be strings")
        host = _host_entry(item)
        if host not in hosts:
            hosts.append(host)
    if len(hosts) > MAX_FILE_HOSTS:
        raise ValueError(f"at most {MAX_FILE_HOSTS} file hosts")
    return tuple(hosts)


def public_address(address: str) -> bool:
    """Whether ``address`` is a public (global unicast) IP address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), parts.port or _DEFAULT_PORTS.get(scheme, 0)


@dataclass(frozen=True)
class LinkRule:
    """Which URLs an upstream source's pages may send Orchard to."""

    base_url: str  # the source's URL (user info ignored)
    file_hosts: tuple[str, ...] = ()

    @cached_property
    def _base_origin(self) -> tuple[str, str, int] | None:
        base = _split(self.base_url)
        return None if base is None else _origin(base)

    def trusted(self, url: str) -> bool:
        """On the source's own origin or an allowed file host: fetched as is."""
        parts = _split(url)
        if parts is None or parts.scheme.lower() not in _DEFAULT_PORTS:
            return False
        if _origin(parts) == self._base_origin:
            return True
        scheme, host, port = _origin(parts)
        named = f"[{host}]" if ":" in host else host
        if f"{named}:{port}" in self.file_hosts:
            return True
        return port == _DEFAULT_PORTS[scheme] and named in self.file_hosts

    def may_be_public(self, url: str) -> bool:
        """An https URL whose host is not a non-public address or name; it is
        fetched only if its host resolves to public addresses alone."""
        parts = _split(url)
        if parts is None or parts.scheme.lower() != "https" or not parts.hostname:
            return False
        host = parts.hostname.rstrip(".")
        if host == "localhost" or host.endswith(".localhost"):
            return False
        if ":" in host or _IPV4ISH.fullmatch(host):  # an address: checked now
            return public_address(host)
        return True  # a name: its addresses are checked when connecting

    def allows_link(self, url: str) -> bool:
        """Whether a page's link to ``url`` is kept."""
        if self.trusted(url):
            return True
        return not self.file_hosts and self.may_be_public(url)

    def allows_links(self, urls: Iterable[str]) -> list[bool]:
        """``allows_link`` of each URL, decided once per scheme and host
        (a page of thousands of files names one or two)."""
        decided: dict[str, bool] = {}
        result = []
        for url in urls:
            key = "/".join(url.split("/", 3)[:3])  # scheme://netloc
            verdict = decided.get(key)
            if verdict is None:
                verdict = decided[key] = self.allows_link(url)
            result.append(verdict)
        return result

    def needs_vetting(self, url: str) -> bool:
        """Whether a request to ``url`` (a link or a redirect) may connect only
        to public addresses; raises ``ValueError`` when it may not be made."""
        if self.trusted(url):
            return False
        if self.may_be_public(url):
            return True
        raise ValueError(f"{mask(url)} is not on a host this upstream may send Orchard to")
