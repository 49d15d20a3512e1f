"""Building wheels and sdists in memory, and twine's upload form, for tests."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from typing import Any


def metadata(name: str, version: str, requires_python: str | None = None,
             requires_dist: tuple[str, ...] = ()) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             "Summary: a test package"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires_dist]
    return ("\n".join(lines) + "\n\n").encode()


def make_wheel(name: str, version: str, *, requires_python: str | None = None,
               requires_dist: tuple[str, ...] = (), meta: bytes | None = None,
               module: str | None = None) -> tuple[str, bytes, bytes]:
    """(filename, wheel bytes, METADATA bytes) of a pure-Python wheel."""
    dist = name.replace("-", "_").replace(".", "_").lower()
    raw = meta if meta is not None else metadata(name, version, requires_python, requires_dist)
    module = module or dist
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{module}/__init__.py", f"VERSION = {version!r}\n")
        zf.writestr(f"{dist}-{version}.dist-info/METADATA", raw)
        zf.writestr(f"{dist}-{version}.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                    "Tag: py3-none-any\n")
        zf.writestr(f"{dist}-{version}.dist-info/RECORD", "")
    return f"{dist}-{version}-py3-none-any.whl", buf.getvalue(), raw


def make_sdist(name: str, version: str, *, requires_python: str | None = None,
               requires_dist: tuple[str, ...] = ()) -> tuple[str, bytes, bytes]:
    """(filename, .tar.gz bytes, PKG-INFO bytes)."""
    dist = name.replace("-", "_").replace(".", "_").lower()
    raw = metadata(name, version, requires_python, requires_dist)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, data in ((f"{dist}-{version}/PKG-INFO", raw),
                           (f"{dist}-{version}/setup.py", b"")):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return f"{dist}-{version}.tar.gz", buf.getvalue(), raw


def upload_form(filename: str, content: bytes, name: str, version: str,
                **extra: str) -> dict[str, Any]:
    """httpx keyword arguments for twine's legacy upload request."""
    data = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if filename.endswith(".whl") else "sdist",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "md5_digest": hashlib.md5(content).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(content, digest_size=32).hexdigest(),
    }
    data.update(extra)
    return {"data": data, "files": {"content": (filename, content, "application/octet-stream")}}
