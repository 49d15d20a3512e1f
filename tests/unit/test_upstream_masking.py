"""Upstream URLs shown by /health never carry credentials."""

from __future__ import annotations

import pytest

from orchard.upstream.sources import without_userinfo


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@mirror.example:8443/simple/", "https://mirror.example:8443/simple/"),
        ("https://token@mirror.example/simple/", "https://mirror.example/simple/"),
        ("http://mirror.example/simple/", "http://mirror.example/simple/"),
    ],
)
def test_credentials_are_removed(url: str, shown: str) -> None:
    assert without_userinfo(url) == shown
