"""Go module paths and versions, and their case-encoding on the wire.

The rules are those of ``golang.org/x/mod/module``: ``CheckPath`` for a
module path, and ``EscapePath``/``UnescapePath``, ``EscapeVersion``/
``UnescapeVersion`` for the form a GOPROXY URL carries, where each capital
letter is ``!`` and its lower-case letter (``github.com/Azure/x`` travels as
``github.com/!azure/x``) so that case-insensitive file systems keep two
paths apart. Paths are case-sensitive: a path is its own key.

Core's ``safe_package_name`` has already passed every path that arrives at
``GoNames``.
"""

from __future__ import annotations

import re

from orchard.errors import InvalidInput

FORMAT = "go"

_ELEMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
_HOST = re.compile(r"^[a-z0-9.-]+$")
_SHORT = re.compile(r"~[0-9]+$")  # a Windows short name: ``abc~1``
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
_MAJOR = re.compile(r"/v([0-9]+)$")
_GOPKG = re.compile(r"\.v(0|[1-9][0-9]*)$")
# A version is a file name in the module cache: letters, digits and a few
# marks (``v1.2.3-rc.1+incompatible``); ``!`` is the escape mark itself.
_VERSION = re.compile(r"^[A-Za-z0-9._+~-]+$")


def _windows_problem(element: str) -> str | None:
    stem = element.split(".")[0]
    if _SHORT.search(stem) or stem.lower() in _RESERVED:
        return f"{element!r} is a reserved file name on Windows"
    return None


def _major_problem(path: str) -> str | None:
    if path.startswith("gopkg.in/"):
        if len(path.split("/")) != 2 or not _GOPKG.search(path):
            return "a gopkg.in path must end in .vN"
        return None
    major = _MAJOR.search(path)
    if major is not None and (major.group(1) in ("0", "1") or major.group(1)[0] == "0"):
        return "a major-version suffix must be /vN with N ≥ 2 and no leading zero"
    return None


def path_problem(path: str) -> str | None:
    """What is wrong with a module path (``CheckPath``), or None: elements
    of ``[A-Za-z0-9-._~]`` not starting or ending with ``.``; the first one
    a lower-case host name with a dot, not starting with ``-``; no Windows
    reserved or short names; a major-version suffix ``/vN`` only for N ≥ 2
    without a leading zero (``gopkg.in/name.vN`` there)."""
    elements = path.split("/")
    for element in elements:
        if (
            not element
            or not _ELEMENT.fullmatch(element)
            or element[0] == "."
            or element[-1] == "."
        ):
            return f"invalid path element {element!r}"
        if (problem := _windows_problem(element)) is not None:
            return problem
    host = elements[0]
    if "." not in host or host.startswith("-") or not _HOST.fullmatch(host):
        return "the first path element must be a lower-case host name with a dot"
    return _major_problem(path)


def check_path(path: str) -> str:
    problem = path_problem(path)
    if problem is not None:
        raise InvalidInput(f"invalid Go module path {path!r}: {problem}")
    return path


def check_version(version: str) -> str:
    """A version as it may name a file: ``[A-Za-z0-9._+~-]``, not only dots,
    not ending with ``.``, no Windows reserved name."""
    if (
        not _VERSION.fullmatch(version)
        or version.strip(".") == ""
        or version.endswith(".")
        or _windows_problem(version) is not None
    ):
        raise InvalidInput(f"invalid Go module version {version!r}")
    return version


def _escape(value: str) -> str:
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in value)


def _unescape(escaped: str) -> str | None:
    """``!x`` → ``X``; None for a capital letter, a non-ASCII character, or
    a ``!`` not followed by a lower-case letter."""
    out: list[str] = []
    bang = False
    for c in escaped:
        if not c.isascii():
            return None
        if bang:
            if not "a" <= c <= "z":
                return None
            out.append(c.upper())
            bang = False
        elif c == "!":
            bang = True
        elif "A" <= c <= "Z":
            return None
        else:
            out.append(c)
    return None if bang else "".join(out)


def escape_path(path: str) -> str:
    """``github.com/Azure/x`` → ``github.com/!azure/x`` (a valid path only)."""
    return _escape(check_path(path))


def unescape_path(escaped: str) -> str:
    path = _unescape(escaped)
    if path is None:
        raise InvalidInput(f"invalid escaped Go module path {escaped!r}")
    problem = path_problem(path)
    if problem is not None:
        raise InvalidInput(f"invalid escaped Go module path {escaped!r}: {problem}")
    return path


def escape_version(version: str) -> str:
    """``v1.0.0-RC1`` → ``v1.0.0-!r!c1`` (a valid version only)."""
    return _escape(check_version(version))


def unescape_version(escaped: str) -> str:
    version = _unescape(escaped)
    if version is None:
        raise InvalidInput(f"invalid escaped Go module version {escaped!r}")
    return check_version(version)


class GoNames:
    format = FORMAT

    def normalize(self, name: str) -> str:
        return check_path(name)

    def check_new(self, name: str) -> None:
        check_path(name)
