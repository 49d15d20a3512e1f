"""Package names: one core safety check for every format, then each
format's own rules (issue 16 point 2)."""

from __future__ import annotations

import pytest

from orchard.core import names
from orchard.errors import InvalidInput


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "a/../b",
        "a//b",
        "/a",
        "a/",
        "./a",
        "a\\b",
        "a\x00b",
        "a\u202eb",
        "a%2Fb",
        "npm:yaml",
        "a\tb",
        "a" * 215,
        "",
    ],
)
def test_core_check_refuses_for_every_format(name: str) -> None:
    with pytest.raises(InvalidInput):
        names.safe_package_name(name)
    for fmt in names.FORMATS:
        with pytest.raises(InvalidInput):
            names.package_name(name, fmt)


def test_core_check_bounds() -> None:
    assert names.safe_package_name("a" * 214) == "a" * 214
    assert names.safe_package_name("@babel/core") == "@babel/core"


@pytest.mark.parametrize(
    ("name", "key"),
    [("Foo_Bar", "foo-bar"), ("FOO.bar", "foo-bar"), ("a..b", "a-b"), ("x", "x")],
)
def test_pypi_names_normalise(name: str, key: str) -> None:
    assert names.package_name(name, "pypi") == key


@pytest.mark.parametrize("name", ["-a", "a-", "@scope/x", "a b", "a+b", "é"])
def test_pypi_refuses(name: str) -> None:
    with pytest.raises(InvalidInput, match="Python"):
        names.package_name(name, "pypi")


@pytest.mark.parametrize(
    "name", ["left-pad", "@babel/core", "@types/node", "lodash.merge", "a-", "x" * 214]
)
def test_npm_names_new_and_read(name: str) -> None:
    assert names.package_name(name, "npm") == name  # case-sensitive: identity
    assert names.new_package_name(name, "npm") == name


@pytest.mark.parametrize("name", ["JSONStream", "Left-Pad", "@Scope/x", "i~am", "hey!"])
def test_npm_legacy_names_are_read_but_not_created(name: str) -> None:
    assert names.package_name(name, "npm") == name
    with pytest.raises(InvalidInput, match="new packages"):
        names.new_package_name(name, "npm")


@pytest.mark.parametrize(
    "name",
    [".hidden", "_private", "@scope/.x", "@scope/_x", "a/b", "@a/b/c", "@/x", "@a/", " a",
     "a b", "node_modules", "favicon.ico", "a@b", "a$b", "x" * 215],
)
def test_npm_refuses(name: str) -> None:
    with pytest.raises(InvalidInput):
        names.package_name(name, "npm")


@pytest.mark.parametrize(
    "path",
    [
        "github.com/pkg/errors",
        "github.com/Azure/go-autorest/v14",
        "golang.org/x/mod",
        "gopkg.in/yaml.v3",
        "gopkg.in/check.v1",
        "example.com/a_b~c-d.e",
        "example.com/v2",
    ],
)
def test_go_module_paths(path: str) -> None:
    assert names.package_name(path, "go") == path  # case-sensitive: identity
    assert names.new_package_name(path, "go") == path


@pytest.mark.parametrize(
    "path",
    [
        "errors",  # no dot in the host
        "GitHub.com/x",  # capitals in the host
        "-x.com/y",
        "example.com/x/v1",
        "example.com/x/v0",
        "example.com/x/v02",
        "gopkg.in/yaml",
        "gopkg.in/yaml.v02",
        "example.com/.x",
        "example.com/x.",
        "example.com/con",
        "example.com/AUX.txt",
        "example.com/abc~1",
        "example.com/a+b",
        "example.com/a b",
        "example.com/@v",
    ],
)
def test_go_refuses(path: str) -> None:
    with pytest.raises(InvalidInput, match="Go module path"):
        names.package_name(path, "go")


def test_generic_keeps_its_rules() -> None:
    assert names.package_name("Gen_Tool+1@x", "generic") == "Gen_Tool+1@x"
    for bad in ("a/b", "-a", "a..b"):
        with pytest.raises(InvalidInput):
            names.package_name(bad, "generic")


def test_the_format_table_lists_every_format_from_its_room() -> None:
    rules = names.format_rules()
    assert tuple(rules) == names.FORMATS
    assert {type(r).__module__ for r in rules.values()} == {
        "orchard.core.names",
        "orchard.protocols.pypi.names",
        "orchard.protocols.npm.names",
        "orchard.protocols.goproxy.names",
    }
