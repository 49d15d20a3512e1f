"""Go's case-encoding of module paths and versions (``!`` + the lower-case
letter for each capital letter), as ``golang.org/x/mod/module`` defines it."""

from __future__ import annotations

import pytest

from orchard.errors import InvalidInput
from orchard.protocols.goproxy import names

PATHS = [
    ("github.com/Azure/azure-sdk-for-go", "github.com/!azure/azure-sdk-for-go"),
    ("github.com/Azure/go-autorest/v14", "github.com/!azure/go-autorest/v14"),
    ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
    ("github.com/pkg/errors", "github.com/pkg/errors"),
    ("example.com/abcdefghijklmnopqrstuvwxyz.-_~0123456789", None),
    ("example.com/ABC", "example.com/!a!b!c"),
]


@pytest.mark.parametrize(("path", "escaped"), PATHS)
def test_paths_round_trip(path: str, escaped: str | None) -> None:
    escaped = escaped or path
    assert names.escape_path(path) == escaped
    assert names.unescape_path(escaped) == path


@pytest.mark.parametrize(
    "escaped",
    [
        "github.com/Azure/x",  # a raw capital letter
        "github.com/!azure!/x",  # ! before a non-letter
        "github.com/!Azure/x",  # ! before a capital letter
        "github.com/x!",  # a trailing !
        "github.com/!!x",
        "github.com/!1x",
        "github.com/\u00e9",  # not ASCII
        "github.com/!\u00e9",
        "!github.com/x",  # decodes to a host with a capital letter
        "github.com/x/v1",  # decodes, but not a valid path
        "github.com/../x",
        "",
    ],
)
def test_unescape_path_refuses(escaped: str) -> None:
    with pytest.raises(InvalidInput, match="escaped Go module path"):
        names.unescape_path(escaped)


@pytest.mark.parametrize("path", ["GitHub.com/x", "github.com/a b", "github.com//x", "x"])
def test_escape_path_refuses_invalid_paths(path: str) -> None:
    with pytest.raises(InvalidInput, match="Go module path"):
        names.escape_path(path)


@pytest.mark.parametrize(
    ("version", "escaped"),
    [
        ("v1.0.0", "v1.0.0"),
        ("v1.0.0-RC1", "v1.0.0-!r!c1"),
        ("v2.3.4+incompatible", "v2.3.4+incompatible"),
        ("v0.0.0-20191109021931-daa7c04131f5", "v0.0.0-20191109021931-daa7c04131f5"),
    ],
)
def test_versions_round_trip(version: str, escaped: str) -> None:
    assert names.escape_version(version) == escaped
    assert names.unescape_version(escaped) == version


@pytest.mark.parametrize("escaped", ["v1.0.0-RC1", "v1!", "v1.0!0", "v1/2", "..", "v1.", ""])
def test_unescape_version_refuses(escaped: str) -> None:
    with pytest.raises(InvalidInput, match="Go module version"):
        names.unescape_version(escaped)


@pytest.mark.parametrize("version", ["v1!", "v1/0", "v1.", "con", ""])
def test_escape_version_refuses(version: str) -> None:
    with pytest.raises(InvalidInput, match="Go module version"):
        names.escape_version(version)
