"""Content negotiation of the simple API (PEP 691).

Three offers: PEP 691 JSON, PEP 503 HTML under its versioned name and as
``text/html``. The highest q wins; ties go to JSON; ``latest+json`` /
``latest+html`` mean v1; no Accept header at all means HTML (what a browser
or an old client expects); nothing acceptable means 406 (``choose`` → None).
"""

from __future__ import annotations

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
HTML = "text/html"
OFFERS = (JSON_V1, HTML_V1, HTML)  # in order of preference on a tie

_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}


def _q(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def parse_accept(header: str) -> list[tuple[str, float]]:
    """``(media range, q)`` pairs; aliases resolved, junk skipped."""
    ranges = []
    for entry in header.split(","):
        media, *params = entry.split(";")
        media = media.strip().lower()
        if "/" not in media:
            continue
        ranges.append((_ALIASES.get(media, media), _q(params)))
    return ranges


def _specificity(media_range: str, offer: str) -> int:
    """How specifically ``media_range`` matches ``offer`` (-1: it doesn't)."""
    if media_range == offer:
        return 2
    kind, _, sub = media_range.partition("/")
    if sub == "*" and (kind == "*" or offer.startswith(kind + "/")):
        return 0 if kind == "*" else 1
    return -1


def quality(ranges: list[tuple[str, float]], offer: str) -> float:
    """The q of ``offer``: that of the most specific matching range."""
    best, q = -1, 0.0
    for media_range, value in ranges:
        spec = _specificity(media_range, offer)
        if spec > best or (spec == best and value > q):
            best, q = spec, value
    return q if best >= 0 else 0.0


def choose(accept: str | None, format_param: str | None = None) -> str | None:
    """The media type to answer with, or None when nothing is acceptable."""
    if format_param:
        fmt = _ALIASES.get(format_param.strip().lower(), format_param.strip().lower())
        return fmt if fmt in OFFERS else None
    if accept is None or not accept.strip():
        return HTML
    ranges = parse_accept(accept)
    scored = [(quality(ranges, offer), -i, offer) for i, offer in enumerate(OFFERS)]
    q, _, offer = max(scored)
    return offer if q > 0 else None


def content_type(media_type: str) -> str:
    """The exact Content-Type header for a negotiated media type."""
    return "text/html; charset=utf-8" if media_type == HTML else media_type
