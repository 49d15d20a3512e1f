"""npm package names (the rules of validate-npm-package-name).

``name`` or ``@scope/name``, each part URL-safe, no leading ``.`` or ``_``,
at most 214 characters. Names are case-sensitive (``JSONStream`` and
``jsonstream`` are two packages upstream), so a name is its own key.
Legacy names (capital letters, ``~'!()*``) still exist upstream: they are
read and cached, but not created here.

Core's ``safe_package_name`` has already passed every name that arrives.
"""

from __future__ import annotations

import re

from orchard.errors import InvalidInput

FORMAT = "npm"

_PART = re.compile(r"^[A-Za-z0-9._~'!()*-]+$")
_LEGACY = re.compile(r"[A-Z~'!()*]")
_BLOCKED = frozenset({"node_modules", "favicon.ico"})


def _parts(name: str) -> list[str]:
    scoped = name.startswith("@")
    parts = name[1:].split("/") if scoped else [name]
    if (
        name != name.strip()
        or len(parts) != (2 if scoped else 1)
        or not all(_PART.fullmatch(part) for part in parts)
        or name.startswith((".", "_"))
        or parts[-1].startswith((".", "_"))
        or name.lower() in _BLOCKED
    ):
        raise InvalidInput(f"invalid npm package name {name!r}")
    return parts


class NpmNames:
    format = FORMAT

    def normalize(self, name: str) -> str:
        _parts(name)
        return name

    def check_new(self, name: str) -> None:
        if _LEGACY.search("/".join(_parts(name))):
            raise InvalidInput(
                f"invalid npm package name {name!r}: new packages must not have capital "
                "letters or any of ~'!()*"
            )
