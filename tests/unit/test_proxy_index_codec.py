"""Cached upstream pages are encoded by hand (faster than dataclasses.asdict):
every field of the page's dataclasses must survive the round trip, so a
field added later cannot be dropped from the cache unnoticed."""

from __future__ import annotations

from dataclasses import asdict, fields

from orchard.protocols.pypi.proxy_index import PAGES
from orchard.protocols.pypi.upstream import UpstreamFile
from orchard.upstream.documents import Document, Entry


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


def test_document_round_trip() -> None:
    entry = Entry("http://upstream.test/simple", [_file()], '"e1"', "Mon, 01 Jan 2026 00:00:00 GMT")
    doc = Document({"a": entry, "b": Entry("http://other.test", missing=True)}, True, 12.5)
    back = PAGES.decode(PAGES.encode(doc))
    assert back == doc
    assert {x.name for x in fields(Entry)} == {"url", "payload", "etag", "last_modified", "missing"}
