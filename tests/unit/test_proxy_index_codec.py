"""Cached upstream pages are encoded by hand (faster than dataclasses.asdict):
every field of the page's dataclasses must survive the round trip, so a
field added later cannot be dropped from the cache unnoticed."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

from orchard.protocols.pypi.proxy_index import CachedIndex, SourceEntry
from orchard.protocols.pypi.upstream import UpstreamFile


def _file() -> UpstreamFile:
    return UpstreamFile(
        filename="demo-1.0-py3-none-any.whl",
        url="http://upstream.test/files/demo-1.0-py3-none-any.whl",
        hashes={"sha256": "0" * 64},
        requires_python=">=3.9",
        yanked="broken",
        core_metadata={"sha256": "1" * 64},
        size=1234,
        upload_time="2026-01-02T03:04:05Z",
    )


def test_every_field_is_encoded() -> None:
    f = _file()
    assert f.to_json() == asdict(f)
    assert set(f.to_json()) == {x.name for x in fields(UpstreamFile)}
    entry = SourceEntry("http://upstream.test/simple", [f], '"etag"', "yesterday", False)
    assert entry.to_json() == asdict(entry)
    assert set(entry.to_json()) == {x.name for x in fields(SourceEntry)}


def test_a_cached_page_round_trips() -> None:
    page = CachedIndex(
        {"pypi": SourceEntry("http://upstream.test/simple", [_file()], None, None, False),
         "corp": SourceEntry("http://corp.test/simple", missing=True)},
        stale=True,
        fetched_at=1234.5,
    )
    assert json.loads(page.encode()) == asdict(page)
    assert CachedIndex.decode(page.encode()) == page
