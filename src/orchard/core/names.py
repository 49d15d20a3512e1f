"""Validation and normalisation of the names users choose.

Everything that becomes part of a URL, a storage key or a log line passes
through here first: path separators, control characters, ``..`` and other
surprises are refused with InvalidInput before anything is written.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Protocol

from orchard.errors import InvalidInput

# The formats, in the order of ``format_rules()`` (checked by the unit tests).
FORMATS = ("generic", "pypi", "npm", "go")

_PROJECT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_PACKAGE = re.compile(r"^[A-Za-z0-9@](?:[A-Za-z0-9._+~@-]{0,212}[A-Za-z0-9_+~])?$")
_VERSION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._+~!-]{0,126}[A-Za-z0-9_+~])?$")
_FILENAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
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
# rules, which live in the format's room under ``protocols/``.

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


class NameRules(Protocol):
    """A format's package-name rules. ``normalize`` checks a name (already
    through ``safe_package_name``) and returns the key it is stored and
    found under; ``check_new`` is the stricter check for a package created
    here (not one cached from an upstream, where legacy names still exist)."""

    format: str

    def normalize(self, name: str) -> str: ...

    def check_new(self, name: str) -> None: ...


class GenericNames:
    """The generic format (files of any kind, no client protocol): one
    ``/``-free element of letters, digits and ``._+~@-``; case kept."""

    format = "generic"

    def normalize(self, name: str) -> str:
        return _check("package", name, _PACKAGE)

    def check_new(self, name: str) -> None:
        self.normalize(name)


@functools.cache
def format_rules() -> dict[str, NameRules]:
    """The one table of formats and their name rules. The rooms' modules
    are imported on the first call, not at the top: they use the checks of
    this module."""
    from orchard.protocols.goproxy.names import GoNames
    from orchard.protocols.npm.names import NpmNames
    from orchard.protocols.pypi.names import PypiNames

    rules: list[NameRules] = [GenericNames(), PypiNames(), NpmNames(), GoNames()]
    return {r.format: r for r in rules}


def package_name(value: str, fmt: str = "generic") -> str:
    """Check a package name of ``fmt`` and return the key it is stored under."""
    return format_rules()[package_format(fmt)].normalize(safe_package_name(value))


def new_package_name(value: str, fmt: str = "generic") -> str:
    """``package_name`` for a package created here (not cached): a format's
    stricter rules for new names apply too."""
    key = package_name(value, fmt)
    format_rules()[fmt].check_new(value)
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
