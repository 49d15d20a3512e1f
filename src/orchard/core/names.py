"""Validation and normalisation of the names users choose.

Everything that becomes part of a URL, a storage key or a log line passes
through here first: path separators, control characters, ``..`` and other
surprises are refused with InvalidInput before anything is written.
"""

from __future__ import annotations

import re
import unicodedata

from orchard.errors import InvalidInput

FORMATS = ("generic", "pypi", "npm", "go")

_PROJECT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_PACKAGE = re.compile(r"^[A-Za-z0-9@](?:[A-Za-z0-9._+~@-]{0,212}[A-Za-z0-9_+~])?$")
_VERSION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._+~!-]{0,126}[A-Za-z0-9_+~])?$")
_FILENAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_PEP503 = re.compile(r"[-_.]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Free text keeps tabs and line breaks; NUL and the other controls are refused
# (PostgreSQL cannot even store NUL in a text column).
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# Characters that do not show as themselves: controls, format characters
# (bidirectional overrides, zero-width joiners and spaces, soft hyphen), line
# and paragraph separators, surrogates, private-use and unassigned code points.
# A name with one can look exactly like another name.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def visible(value: str) -> bool:
    """Whether every character of ``value`` shows as itself: no invisible or
    format characters, and no space but the plain one (U+0020)."""
    for c in value:
        category = unicodedata.category(c)
        if category in _INVISIBLE_CATEGORIES or (category == "Zs" and c != " "):
            return False
    return True


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise InvalidInput(f"invalid {kind} name {value!r}")
    return value


# Path segments the protocol routes use where a project name would stand
# (``/pypi/simple/`` is the alias of the proxy project's index).
RESERVED_PROJECTS = frozenset({"simple"})


def project_name(value: str) -> str:
    _check("project", value, _PROJECT)
    if value.lower() in RESERVED_PROJECTS:
        raise InvalidInput(f"project name {value!r} is reserved")
    return value


def version_string(value: str) -> str:
    if not isinstance(value, str) or not _VERSION.fullmatch(value) or ".." in value:
        raise InvalidInput(f"invalid version {value!r}")
    return value


def filename(value: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 255
        or value in (".", "..")
        or value.startswith((".", " "))
        or value.endswith((" ", "."))
        or _FILENAME_FORBIDDEN.search(value)
    ):
        raise InvalidInput(f"invalid filename {value!r}")
    if not visible(value):
        raise InvalidInput(
            f"invalid filename {value!r}: invisible, format or bidirectional-control "
            "characters are not allowed"
        )
    return value


def package_format(value: str) -> str:
    if value not in FORMATS:
        raise InvalidInput(f"invalid package format {value!r}; one of {', '.join(FORMATS)}")
    return value


# --- package names ----------------------------------------------------------------------------
# One safety check every name of every format passes, then the format's own
# rules. (Issue 16 step 7 moves each format's rules into its room under
# ``protocols/``; core will then take them as a parameter.)

MAX_PACKAGE_NAME = 214  # the column's width, and npm's limit
_UNSAFE = frozenset("\\%:")  # no path escapes, no URL escapes, no ``format:name`` clash


def safe_package_name(value: object) -> str:
    """The check every package name passes, whatever its format: 1 to 214
    characters, each one visible (no controls, no bidirectional overrides),
    no backslash, ``%`` or ``:``, and, split at ``/``, no empty, ``.`` or
    ``..`` element (so no leading, trailing or doubled ``/``)."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_PACKAGE_NAME
        or not visible(value)
        or _CONTROL.search(value)
        or any(c in _UNSAFE for c in value)
        or any(element in ("", ".", "..") for element in value.split("/"))
    ):
        raise InvalidInput(f"invalid package name {value!r}")
    return value


class NameRules:
    """A format's package-name rules: ``normalize`` checks a name and
    returns the key it is stored and found under; ``check_new`` is the
    stricter check for a package created here (not one cached from an
    upstream, where legacy names still exist)."""

    format = "generic"

    def normalize(self, name: str) -> str:
        _check("package", name, _PACKAGE)
        return name

    def check_new(self, name: str) -> None:
        self.normalize(name)


class PypiNames(NameRules):
    """PEP 508 names, normalised by PEP 503 (``Foo.Bar_baz`` → ``foo-bar-baz``)."""

    format = "pypi"
    _VALID = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)

    def normalize(self, name: str) -> str:
        if not self._VALID.fullmatch(safe_package_name(name)):
            raise InvalidInput(f"invalid Python package name {name!r}")
        return _PEP503.sub("-", name).lower()


class NpmNames(NameRules):
    """npm's names (validate-npm-package-name): ``name`` or ``@scope/name``,
    each part URL-safe, no leading ``.`` or ``_``, at most 214 characters.
    Case-sensitive (``JSONStream`` and ``jsonstream`` are two packages
    upstream), so the key is the name itself; legacy names (capitals,
    ``~'!()*``) are read and cached but not created here."""

    format = "npm"
    _PART = re.compile(r"^[A-Za-z0-9._~'!()*-]+$")
    _LEGACY = re.compile(r"[A-Z~'!()*]")
    _BLOCKED = frozenset({"node_modules", "favicon.ico"})

    def _parts(self, name: str) -> list[str]:
        safe_package_name(name)
        parts = name[1:].split("/") if name.startswith("@") else [name]
        if (
            name != name.strip()
            or len(parts) != (2 if name.startswith("@") else 1)
            or not all(self._PART.fullmatch(part) for part in parts)
            or name.startswith((".", "_"))
            or parts[-1].startswith((".", "_"))
            or name.lower() in self._BLOCKED
        ):
            raise InvalidInput(f"invalid npm package name {name!r}")
        return parts

    def normalize(self, name: str) -> str:
        self._parts(name)
        return name

    def check_new(self, name: str) -> None:
        if self._LEGACY.search("/".join(self._parts(name))):
            raise InvalidInput(
                f"invalid npm package name {name!r}: new packages must not have capital "
                "letters or any of ~'!()*"
            )


class GoNames(NameRules):
    """Go module paths (``golang.org/x/mod/module.CheckPath``): elements of
    ``[A-Za-z0-9-._~]`` not starting or ending with ``.``; the first one a
    lower-case host name with a dot, not starting with ``-``; no Windows
    reserved or short (``~1``) names; a major-version suffix ``/vN`` only
    for N ≥ 2 without a leading zero (``gopkg.in/name.vN`` there). Paths are
    case-sensitive: the key is the path itself."""

    format = "go"
    _ELEMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
    _HOST = re.compile(r"^[a-z0-9.-]+$")
    _SHORT = re.compile(r"~[0-9]+$")
    _RESERVED = frozenset(
        {"con", "prn", "aux", "nul"}
        | {f"com{i}" for i in range(1, 10)}
        | {f"lpt{i}" for i in range(1, 10)}
    )
    _MAJOR = re.compile(r"/v([0-9]+)$")
    _GOPKG = re.compile(r"\.v(0|[1-9][0-9]*)$")

    def normalize(self, name: str) -> str:
        elements = safe_package_name(name).split("/")
        wrong = None
        for element in elements:
            if not self._ELEMENT.fullmatch(element) or element[0] == "." or element[-1] == ".":
                wrong = f"invalid path element {element!r}"
            elif self._SHORT.search(element.split(".")[0]) or (
                element.split(".")[0].lower() in self._RESERVED
            ):
                wrong = f"{element!r} is a reserved file name on Windows"
        host = elements[0]
        if wrong is None and (
            "." not in host or host.startswith("-") or not self._HOST.fullmatch(host)
        ):
            wrong = "the first path element must be a lower-case host name with a dot"
        if wrong is None:
            wrong = self._major_problem(name)
        if wrong is not None:
            raise InvalidInput(f"invalid Go module path {name!r}: {wrong}")
        return name

    def _major_problem(self, path: str) -> str | None:
        if path.startswith("gopkg.in/"):
            if len(path.split("/")) != 2 or not self._GOPKG.search(path):
                return "a gopkg.in path must end in .vN"
            return None
        major = self._MAJOR.search(path)
        if major is not None and (major.group(1) in ("0", "1") or major.group(1)[0] == "0"):
            return "a major-version suffix must be /vN with N ≥ 2 and no leading zero"
        return None


RULES: dict[str, NameRules] = {
    rules.format: rules for rules in (NameRules(), PypiNames(), NpmNames(), GoNames())
}


def package_name(value: str, fmt: str = "generic") -> str:
    """Check a package name of ``fmt`` and return the key it is stored under."""
    return RULES[package_format(fmt)].normalize(safe_package_name(value))


def new_package_name(value: str, fmt: str = "generic") -> str:
    """``package_name`` for a package created here (not cached): a format's
    stricter rules for new names apply too."""
    key = package_name(value, fmt)
    RULES[fmt].check_new(value)
    return key


def query_term(kind: str, value: str | None) -> str | None:
    """A search or filter term from a query string. Names never contain
    control characters, so a term with one is a mistake (or an attack)."""
    if value is not None and _CONTROL.search(value):
        raise InvalidInput(f"invalid {kind} {value!r}: control characters are not allowed")
    return value


def free_text(kind: str, value: str | None) -> str | None:
    """A description, a yank reason, a deprecation message."""
    if value is not None and _TEXT_FORBIDDEN.search(value):
        raise InvalidInput(f"invalid {kind}: control characters are not allowed")
    return value
