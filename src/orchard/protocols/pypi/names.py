"""PyPI names: PEP 508 package names, their PEP 503 normal form (the key a
package is stored and found under), PEP 440 versions, and distribution
filenames.

Only wheels and sdists are accepted (the formats pip and uv install); eggs,
``.exe`` and other legacy formats are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from orchard.core import names as core_names
from orchard.errors import InvalidInput

# PEP 508 / core metadata: ASCII letters and digits, with . _ - inside.
_VALID = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
SDIST_SUFFIXES = (".tar.gz", ".zip")


def is_valid(name: str) -> bool:
    return bool(_VALID.fullmatch(name)) and len(name) <= 214


def normalize(name: str) -> str:
    """``Foo.Bar_baz`` → ``foo-bar-baz`` (PEP 503); InvalidInput if not a name."""
    if not is_valid(name):
        raise InvalidInput(f"invalid Python package name {name!r}")
    return canonicalize_name(name)


class PypiNames:
    """The pypi format's rules for the format table in ``core/names.py``:
    ``Foo.Bar_baz`` is stored and found as ``foo-bar-baz``."""

    format = "pypi"

    def normalize(self, name: str) -> str:
        return normalize(name)

    def check_new(self, name: str) -> None:
        normalize(name)


def canonical_version(version: str) -> str:
    """The PEP 440 normal form (``1.0-RC1`` → ``1.0rc1``); InvalidInput if
    ``version`` is not a PEP 440 version."""
    try:
        return str(Version(version))
    except InvalidVersion as exc:
        raise InvalidInput(f"invalid version {version!r}: not a PEP 440 version") from exc


@dataclass(frozen=True)
class Distribution:
    """What a distribution's filename says."""

    filename: str
    name: str  # normalised
    version: str  # PEP 440 normal form
    kind: str  # "wheel" | "sdist"


def parse_filename(filename: str) -> Distribution:
    """Parse a wheel or sdist filename; InvalidInput for anything else."""
    core_names.filename(filename)  # no separators, control characters, dot files
    dist = None
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            dist = Distribution(filename, str(name), str(version), "wheel")
        elif filename.endswith(SDIST_SUFFIXES):
            name, version = parse_sdist_filename(filename)
            dist = Distribution(filename, str(name), str(version), "sdist")
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise InvalidInput(f"invalid distribution filename {filename!r}: {exc}") from exc
    if dist is not None:
        if not is_valid(dist.name):
            raise InvalidInput(f"invalid distribution filename {filename!r}")
        return dist
    raise InvalidInput(
        f"unsupported distribution file {filename!r}: only wheels (.whl) and "
        "sdists (.tar.gz, .zip) can be uploaded"
    )


def try_parse_filename(filename: str) -> Distribution | None:
    try:
        return parse_filename(filename)
    except InvalidInput:
        return None
