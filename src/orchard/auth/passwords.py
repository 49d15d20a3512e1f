"""Password hashing (argon2id) off the event loop, and the password rules.

``argon2`` is imported on the first hash or verification, not with this
module, so a server that nobody signs in to never loads it.
"""

from __future__ import annotations

import secrets
from functools import cache
from typing import TYPE_CHECKING

import anyio.to_thread

from orchard.errors import InvalidInput

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 10
MAX_LENGTH = 1024


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


# A hash to verify against when the user does not exist, so that the time
# taken does not tell which user names exist.
_dummy: list[str] = []


def _dummy_hash() -> str:
    if not _dummy:
        _dummy.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _dummy[0]


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"password must have at most {MAX_LENGTH} characters")


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher().hash, password)


def hash_password_sync(password: str) -> str:
    return _hasher().hash(password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    def verify() -> bool:
        try:
            return (
                _hasher().verify(password_hash or _dummy_hash(), password)
                and password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    if len(password) > MAX_LENGTH:
        return False
    return await anyio.to_thread.run_sync(verify)


def generate_password() -> str:
    return secrets.token_urlsafe(18)
