"""What an upstream said a file's digest is, in the format's own notation,
and the check of the bytes received against it.

- ``HexDigests``: hex digests by algorithm, as PyPI's simple API gives them
  (``sha256`` and the others the proxy can compute while streaming);
- ``Integrity``: an SRI string such as npm's ``dist.integrity``
  (``sha512-<base64>``; several space-separated tokens: the strongest
  algorithm known here must match);
- ``GoModuleHash``: Go's ``h1:`` hash of a module zip (the
  ``golang.org/x/mod/sumdb/dirhash`` definition: SHA-256 over the sorted
  lines ``"<sha256 hex>  <name>\\n"`` of the zip's files, every name under
  ``module@version/``), checked once the zip is complete; ``GoModHash``:
  the ``h1:`` of a ``.mod`` file (the same, over the one name ``go.mod``).

A digest checks the running hashes of the stream (``check``); one that
needs the whole file (``whole_file``) reads it once it is complete, off
the event loop (``check_file``), before anything is recorded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from orchard.storage.base import EXTRA_DIGESTS, BlobInfo

HEX_VERIFIABLE = ("sha256", "sha512", "sha1", "md5")
SRI_STRENGTH = ("sha512", "sha384", "sha256")  # strongest first; sha1 is not SRI
MAX_MODULE_ZIP = 500 * 1024 * 1024  # Go's own limit on a module's unpacked size
CHUNK = 1024 * 1024


class Digest(Protocol):
    """An expected digest of one upstream file."""

    @property
    def streaming(self) -> frozenset[str]:
        """Running hashes needed besides SHA-256 (of ``EXTRA_DIGESTS``)."""
        ...

    @property
    def whole_file(self) -> bool:
        """Whether ``check_file`` must read the complete file."""
        ...

    def check(self, info: BlobInfo) -> str | None:
        """A message when the running hashes contradict this digest."""
        ...

    def check_file(self, file: BinaryIO) -> str | None:
        """A message when the complete file contradicts this digest
        (blocking: run in a worker thread)."""
        ...


@dataclass(frozen=True)
class HexDigests:
    """Hex digests by algorithm name (PyPI); an empty mapping checks nothing."""

    hashes: dict[str, str] = field(default_factory=dict)
    whole_file = False

    @property
    def streaming(self) -> frozenset[str]:
        return frozenset(self.hashes) & EXTRA_DIGESTS

    def check(self, info: BlobInfo) -> str | None:
        for algo in HEX_VERIFIABLE:
            expected = self.hashes.get(algo)
            actual = getattr(info, algo)
            if expected and expected.lower() != actual:
                return f"{algo} {actual} differs from the upstream's {expected.lower()}"
        return None

    def check_file(self, file: BinaryIO) -> str | None:
        return None


def sha256_hex(value: str) -> HexDigests:
    return HexDigests({"sha256": value})


@dataclass(frozen=True)
class Integrity:
    """A Subresource Integrity string (npm's ``dist.integrity``)."""

    value: str
    whole_file = False

    def _strongest(self) -> tuple[str, list[bytes]]:
        tokens: dict[str, list[bytes]] = {}
        for token in self.value.split():
            algo, _, b64 = token.partition("-")
            b64 = b64.split("?", 1)[0]  # SRI options are ignored
            if algo in SRI_STRENGTH:
                try:
                    tokens.setdefault(algo, []).append(base64.b64decode(b64, validate=True))
                except (binascii.Error, ValueError):
                    continue
        for algo in SRI_STRENGTH:
            if algo in tokens:
                return algo, tokens[algo]
        return "", []

    @property
    def streaming(self) -> frozenset[str]:
        algo, _ = self._strongest()
        return frozenset({algo}) & EXTRA_DIGESTS

    def check(self, info: BlobInfo) -> str | None:
        algo, expected = self._strongest()
        if not algo or algo == "sha384":  # nothing this proxy computes: refuse, do not trust
            return f"integrity {self.value!r} names no digest Orchard can check"
        actual = bytes.fromhex(getattr(info, algo) or "")
        if actual not in expected:
            mine = base64.b64encode(actual).decode()
            return f"integrity {algo}-{mine} differs from the upstream's {self.value}"
        return None

    def check_file(self, file: BinaryIO) -> str | None:
        return None


def dirhash_h1(lines: list[tuple[str, str]]) -> str:
    """Go's ``h1:`` hash of (name, sha256 hex) pairs."""
    outer = hashlib.sha256()
    for name, hexdigest in sorted(lines):
        if "\n" in name:
            raise ValueError("file names with newlines have no h1: hash")
        outer.update(f"{hexdigest}  {name}\n".encode())
    return "h1:" + base64.b64encode(outer.digest()).decode()


def module_zip_h1(file: BinaryIO, prefix: str, limit: int = MAX_MODULE_ZIP) -> str:
    """The ``h1:`` hash of a module zip whose names must all start with
    ``prefix`` (``module@version/``, the module path as declared: not
    case-encoded with ``!`` as in the proxy's URLs).
    Raises ValueError for a zip that is not a valid module zip."""
    lines: list[tuple[str, str]] = []
    total = 0
    try:
        with zipfile.ZipFile(file) as archive:
            for item in archive.infolist():
                if not item.filename.startswith(prefix):
                    raise ValueError(f"{item.filename!r} is outside {prefix!r}")
                inner = hashlib.sha256()
                with archive.open(item) as member:
                    while chunk := member.read(CHUNK):
                        total += len(chunk)
                        if total > limit:
                            raise ValueError("the module zip unpacks past Go's size limit")
                        inner.update(chunk)
                lines.append((item.filename, inner.hexdigest()))
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"not a readable zip: {exc}") from exc
    return dirhash_h1(lines)


@dataclass(frozen=True)
class GoModuleHash:
    """The ``h1:`` hash of the zip of ``module@version`` (the module path
    and version decoded from the proxy's URLs: the zip's names use them
    as declared, e.g. ``github.com/Azure/x@v1.0.0/go.mod``)."""

    h1: str
    module: str
    version: str
    streaming = frozenset[str]()
    whole_file = True

    def check(self, info: BlobInfo) -> str | None:
        return None

    def check_file(self, file: BinaryIO) -> str | None:
        try:
            actual = module_zip_h1(file, f"{self.module}@{self.version}/")
        except ValueError as exc:
            return f"{self.module}@{self.version}: {exc}"
        if actual != self.h1:
            return f"{actual} differs from the upstream's {self.h1}"
        return None


@dataclass(frozen=True)
class GoModHash:
    """The ``h1:`` hash of a module's ``.mod`` file (go.sum's ``/go.mod`` line)."""

    h1: str
    streaming = frozenset[str]()
    whole_file = True

    def check(self, info: BlobInfo) -> str | None:
        return None

    def check_file(self, file: BinaryIO) -> str | None:
        inner = hashlib.sha256()
        while chunk := file.read(CHUNK):
            inner.update(chunk)
        actual = dirhash_h1([("go.mod", inner.hexdigest())])
        return None if actual == self.h1 else f"{actual} differs from the upstream's {self.h1}"
