"""Content negotiation of the simple API (PROTOCOLS A3)."""

from __future__ import annotations

import pytest

from orchard.protocols.pypi.negotiate import HTML, HTML_V1, JSON_V1, choose, content_type

PIP = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
       "text/html; q=0.01")
UV = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
      "text/html;q=0.01")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP, JSON_V1),
        (UV, JSON_V1),
        (None, HTML),  # no Accept header: HTML
        ("", HTML),
        ("*/*", JSON_V1),  # a tie: JSON
        ("text/html", HTML),
        ("application/vnd.pypi.simple.v1+html", HTML_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/vnd.pypi.simple.latest+html", HTML_V1),
        ("text/html, application/vnd.pypi.simple.v1+json", JSON_V1),  # order means nothing
        ("application/vnd.pypi.simple.v1+json;q=0.5, text/html", HTML),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", HTML),  # browser
        ("text/*", HTML),
        ("application/*;q=0.9, text/html;q=0.5", JSON_V1),
        ("application/json", None),  # 406
        ("application/vnd.pypi.simple.v1+json;q=0", None),
        ("*/*, application/vnd.pypi.simple.v1+json;q=0", HTML_V1),  # refused JSON, tie → v1 html
        ("text/html;q=abc", None),  # an unreadable q counts as 0
        ("garbage", None),
    ],
)
def test_choose(accept: str | None, expected: str | None) -> None:
    assert choose(accept) == expected


def test_format_query_parameter() -> None:
    assert choose(PIP, "text/html") == HTML
    assert choose(None, "application/vnd.pypi.simple.latest+json") == JSON_V1
    assert choose(None, "application/json") is None


def test_content_types_are_exact() -> None:
    assert content_type(JSON_V1) == "application/vnd.pypi.simple.v1+json"
    assert content_type(HTML_V1) == "application/vnd.pypi.simple.v1+html"
    assert content_type(HTML) == "text/html; charset=utf-8"
