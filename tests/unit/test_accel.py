"""The X-Accel-Redirect layer (orchard/accel.py) on its own: which requests
it applies to, which paths it hands to nginx, and that every other answer
passes unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchard.accel import AccelRedirect

SHA = "ab" * 32
BLOBS = Path("/srv/orchard/blobs")
BLOB = f"{BLOBS}/sha256/ab/ab/{SHA}"


def accel() -> AccelRedirect:
    return AccelRedirect("/_orchard/blobs/", BLOBS)


@pytest.mark.parametrize(
    ("headers", "wanted"),
    [
        ([], False),
        ([(b"x-orchard-accel", b"on")], True),
        ([(b"x-orchard-accel", b" YES ")], True),
        ([(b"x-orchard-accel", b"off")], False),
        ([(b"x-orchard-accel", b"on"), (b"x-orchard-accel", b"off")], False),  # the last counts
        ([(b"x-accel-redirect", b"/etc/passwd")], False),
    ],
)
def test_only_requests_the_front_marked(headers: list[tuple[bytes, bytes]], wanted: bool) -> None:
    assert accel().wanted({"headers": headers}) is wanted


@pytest.mark.parametrize(
    "path",
    [
        "/srv/orchard/frontend/dist/index.html",  # the web UI's files
        "/srv/orchard/blobsX/sha256/ab/ab/" + SHA,  # a sibling folder
        f"{BLOBS}/sha256/../../../etc/passwd",
        f"{BLOBS}/uploads/part-1",  # resumable upload parts
        f"{BLOBS}/sha256/ab/{SHA}",
        f"{BLOBS}/sha256/ab/ab/{SHA}.tmp-1",
    ],
)
def test_only_blobs_are_handed_over(path: str) -> None:
    assert accel().location(path) is None


def test_a_blob_is_named_under_the_prefix() -> None:
    assert accel().location(BLOB) == f"/_orchard/blobs/sha256/ab/ab/{SHA}"


async def run(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    wrapped = accel().wrap(send)
    for message in messages:
        await wrapped(message)
    return sent


START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-length", b"7"), (b"etag", f'"{SHA}"'.encode())]}


async def test_a_blob_sent_by_path_becomes_a_redirect() -> None:
    sent = await run([START, {"type": "http.response.pathsend", "path": BLOB}])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    headers = dict(sent[0]["headers"])
    assert headers[b"x-accel-redirect"] == f"/_orchard/blobs/sha256/ab/ab/{SHA}".encode()
    assert headers[b"content-length"] == b"0"
    assert headers[b"etag"] == f'"{SHA}"'.encode()
    assert sent[1]["body"] == b""


@pytest.mark.parametrize(
    "rest",
    [
        [{"type": "http.response.body", "body": b"chunk", "more_body": True},
         {"type": "http.response.body", "body": b"", "more_body": False}],
        [{"type": "http.response.pathsend", "path": "/srv/orchard/frontend/dist/app.js"}],
    ],
)
async def test_other_answers_pass_unchanged(rest: list[dict[str, Any]]) -> None:
    assert await run([START, *rest]) == [START, *rest]


async def test_only_a_whole_answer_becomes_a_redirect() -> None:
    partial = {**START, "status": 206}
    pathsend = {"type": "http.response.pathsend", "path": BLOB}
    assert await run([partial, pathsend]) == [partial, pathsend]


def test_a_relative_blobs_folder_still_matches(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = AccelRedirect("/b/", Path("data/blobs"))
    assert relative.location(f"data/blobs/sha256/ab/ab/{SHA}") == f"/b/sha256/ab/ab/{SHA}"
    assert relative.location(f"data/blobs/sha256/AB/ab/{SHA}") is None  # keys are lowercase hex
