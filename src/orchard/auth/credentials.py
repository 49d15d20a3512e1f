"""The credentials a request presents, read one way for everyone.

Authentication (``principal.resolve``) and the hot path, which answers
anonymous reads from memory, both ask this module, so a request the hot path
takes for anonymous is exactly one that authentication would resolve to
anonymous: no byte search that a differently spelt cookie slips past.

Sources: the first ``Authorization`` header, and the session cookie parsed
by Starlette's cookie parser from every ``Cookie`` header (HTTP/2 clients may
split cookies over several).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import cookie_parser

from orchard.auth.sessions import COOKIE

CREDENTIALED = "orchard.credentialed"  # set in the ASGI scope when a request presented any


@dataclass(frozen=True, slots=True)
class Presented:
    authorization: str | None
    session_cookie: str | None

    @property
    def any(self) -> bool:
        return bool(self.authorization) or bool(self.session_cookie)


NONE = Presented(None, None)


def presented(headers: Iterable[tuple[bytes, bytes]]) -> Presented:
    """The credentials in raw ASGI headers (names lower-case)."""
    authorization: str | None = None
    cookies: list[str] = []
    for name, value in headers:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"cookie":
            cookies.append(value.decode("latin-1"))
    if authorization is None and not cookies:
        return NONE
    session = cookie_parser("; ".join(cookies)).get(COOKIE) if cookies else None
    return Presented(authorization, session)
