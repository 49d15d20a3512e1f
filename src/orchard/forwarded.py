"""Requests relayed by a trusted proxy: ``X-Forwarded-For`` and ``-Proto``.

Behind nginx or a load balancer every request comes from the proxy's
address, so the sign-in throttle (one key per client address) and the audit
log would see one client, and links would carry the proxy's scheme. For a
request whose peer is one of ``ORCHARD_FORWARDED_ALLOW_IPS`` (addresses or
networks; ``*`` for any; empty for none), the client becomes the right-most
address of ``X-Forwarded-For`` that is not itself a trusted proxy, and the
scheme that of ``X-Forwarded-Proto``; a request from anywhere else keeps its
own. The same trust decides whether the proxy's ``X-Orchard-Accel`` is
believed (accel.py).
"""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = frozenset({"http", "https"})


def parse(spec: str) -> tuple[bool, tuple[IPNetwork, ...]]:
    """(any peer, the networks) of a comma-separated list; raises ValueError."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if "*" in items:
        return True, ()
    return False, tuple(ipaddress.ip_network(item, strict=False) for item in items)


KNOWN_PEERS = 1024  # trust decisions remembered (a request checks its peer each time)


class TrustedProxies:
    def __init__(self, spec: str) -> None:
        self.any, self.networks = parse(spec)
        self._known: dict[str, bool] = {}

    def trusts(self, host: str | None) -> bool:
        if not host:
            return False
        known = self._known.get(host)
        if known is None:
            known = self._decide(host)
            if len(self._known) >= KNOWN_PEERS:
                self._known.clear()
            self._known[host] = known
        return known

    def _decide(self, host: str) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def relayed(self, scope: Scope) -> bool:
        """Whether the request's peer is a trusted proxy; if so, take the
        client address and scheme it forwarded."""
        client = scope.get("client")
        if not self.trusts(client[0] if client else None):
            return False
        hops: list[str] = []
        proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                hops += [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            elif name == b"x-forwarded-proto" and proto is None:
                proto = value.decode("latin-1").strip().lower()
        if hops:
            untrusted = [h for h in hops if not self.trusts(h)]
            scope["client"] = (untrusted[-1] if untrusted else hops[0], 0)
        if proto in SCHEMES:
            scope["scheme"] = proto
        return True
