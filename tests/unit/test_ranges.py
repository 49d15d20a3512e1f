"""Range header parsing (RFC 9110 single byte ranges)."""

from __future__ import annotations

import pytest

from orchard.api.downloads import content_disposition, parse_range
from orchard.errors import RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=0-0,5-6", None),  # several ranges: answered in full
        ("items=0-5", None),  # unknown unit: ignored
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0", "bytes=9-3"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_content_disposition_quotes_and_encodes() -> None:
    value = content_disposition('we"ird ü.txt')
    assert 'filename="we_ird ?.txt"' in value
    assert "filename*=UTF-8''we%22ird%20%C3%BC.txt" in value
