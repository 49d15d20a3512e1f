"""Core Metadata from wheels and sdists, including hostile archives."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from orchard.errors import InvalidInput
from orchard.protocols.pypi import metadata
from orchard.protocols.pypi.metadata import dependency_rows, extract_metadata, extract_metadata_from
from tests.pypi_support import make_sdist, make_wheel
from tests.pypi_support import metadata as metadata_bytes


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _extract(data: bytes, filename: str) -> metadata.CoreMetadata:
    return extract_metadata_from(io.BytesIO(data), filename)


def test_wheel() -> None:
    filename, data, raw = make_wheel("Demo.Pkg", "1.0", requires_python=">=3.9",
                                     requires_dist=("requests>=2", "rich; extra == 'cli'"))
    meta = _extract(data, filename)
    assert meta.raw == raw  # byte for byte
    assert (meta.name, meta.version, meta.requires_python) == ("Demo.Pkg", "1.0", ">=3.9")
    assert meta.requires_dist == ["requests>=2", "rich; extra == 'cli'"]


def test_sdists() -> None:
    filename, data, raw = make_sdist("demo", "2.0", requires_python=">=3.8")
    meta = _extract(data, filename)
    assert meta.raw == raw and meta.version == "2.0"
    zipped = _zip({"demo-2.0/PKG-INFO": raw, "demo-2.0/src/demo.egg-info/PKG-INFO": b"x"})
    assert _extract(zipped, "demo-2.0.zip").raw == raw


async def test_extract_from_a_path_off_the_event_loop(tmp_path: Path) -> None:
    filename, data, raw = make_wheel("demo", "1.0")
    path = tmp_path / filename
    path.write_bytes(data)
    assert (await extract_metadata(path, filename)).raw == raw


def _bomb_tar() -> bytes:
    return _tar([("demo-1.0/padding.bin", b"\0" * 200_000),
                 ("demo-1.0/PKG-INFO", metadata_bytes("demo", "1.0"))])


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"not an archive", "demo-1.0-py3-none-any.whl", "not a valid archive"),
        (make_wheel("demo", "1.0")[1][:200], "demo-1.0-py3-none-any.whl", "not a valid archive"),
        (make_sdist("demo", "1.0")[1][:60], "demo-1.0.tar.gz", "not a valid archive"),
        (b"\x1f\x8b garbage", "demo-1.0.tar.gz", "not a valid archive"),
        (_zip({"demo/__init__.py": b""}), "demo-1.0-py3-none-any.whl", "no *.dist-info/METADATA"),
        (_zip({"a-1.dist-info/METADATA": b"Name: a\nVersion: 1\n",
               "b-1.dist-info/METADATA": b"Name: b\nVersion: 1\n"}),
         "demo-1.0-py3-none-any.whl", "more than one"),
        (_zip({"../evil.dist-info/METADATA": b"x"}), "demo-1.0-py3-none-any.whl", "unsafe path"),
        (_zip({"/abs.dist-info/METADATA": b"x"}), "demo-1.0-py3-none-any.whl", "unsafe path"),
        (_tar([("/etc/PKG-INFO", b"x")]), "demo-1.0.tar.gz", "unsafe path"),
        (_tar([("demo-1.0/../../PKG-INFO", b"x")]), "demo-1.0.tar.gz", "unsafe path"),
        (_tar([("demo-1.0/setup.py", b"")]), "demo-1.0.tar.gz", "no top-level PKG-INFO"),
        (_zip({"x.dist-info/METADATA": b"Summary: nothing else\n"}),
         "demo-1.0-py3-none-any.whl", "no Name"),
        (b"", "demo-1.0.tar.bz2", "neither a wheel nor an sdist"),
    ],
)
def test_bad_archives(data: bytes, filename: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _extract(data, filename)
    assert message in caught.value.message
    assert filename in caught.value.message


def test_symlinked_pkg_info_is_refused() -> None:
    link = tarfile.TarInfo("demo-1.0/PKG-INFO")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(InvalidInput, match="not a regular file"):
        _extract(_tar([link]), "demo-1.0.tar.gz")


def test_oversized_metadata_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "MAX_METADATA", 1000)
    big = metadata_bytes("demo", "1.0") + b"x" * 2000
    with pytest.raises(InvalidInput, match="larger than 1000"):
        _extract(_zip({"demo-1.0.dist-info/METADATA": big}), "demo-1.0-py3-none-any.whl")
    with pytest.raises(InvalidInput, match="larger than 1000"):
        _extract(_tar([("demo-1.0/PKG-INFO", big)]), "demo-1.0.tar.gz")


def test_zip_bomb_by_declared_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "MAX_TOTAL", 100_000)
    bomb = _zip({"demo-1.0.dist-info/METADATA": metadata_bytes("demo", "1.0"),
                 "demo/zeros.bin": b"\0" * 200_000})
    assert len(bomb) < 2000  # it compresses 100:1
    with pytest.raises(InvalidInput, match="expands"):
        _extract(bomb, "demo-1.0-py3-none-any.whl")


def test_tar_bomb_by_scanned_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "MAX_TOTAL", 100_000)
    with pytest.raises(InvalidInput, match="expands"):
        _extract(_bomb_tar(), "demo-1.0.tar.gz")


def test_member_larger_than_declared_is_corrupt() -> None:
    """A zip whose directory understates a member's size: the read stops at
    the declared size and the CRC check fails."""
    raw = metadata_bytes("demo", "1.0")
    data = bytearray(_zip({"demo-1.0.dist-info/METADATA": raw}, zipfile.ZIP_STORED))
    good = len(raw).to_bytes(4, "little")
    short = (len(raw) - 5).to_bytes(4, "little")
    # uncompressed size fields: local header offset 22, central directory entry +24
    data[22:26] = short
    central = data.index(b"PK\x01\x02")
    assert data[central + 24:central + 28] == good
    data[central + 24:central + 28] = short
    with pytest.raises(InvalidInput):
        _extract(bytes(data), "demo-1.0-py3-none-any.whl")


def test_dependency_rows() -> None:
    rows = dependency_rows("a" * 64, ["Requests[socks]>=2,<3; python_version < '3.12'",
                                      "rich; extra == 'cli'", "not a requirement !!",
                                      "Zope.Interface"])
    assert [(r["name"], r["kind"]) for r in rows] == [
        ("requests", "runtime"), ("rich", "optional"), ("zope-interface", "runtime")]
    assert rows[0]["specifier"] == '[socks]<3,>=2; python_version < "3.12"'
    assert all(r["format"] == "pypi" for r in rows)
