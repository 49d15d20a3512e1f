"""Encryption at rest for stored secrets (upstream credentials).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with a key derived
from the server's secret key. Ciphertexts never leave the server; the API
only says whether a secret is set.

``cryptography`` is imported on the first seal or open, not with this
module: a server without stored credentials never loads it (several MB of
resident memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchard.auth.keys import fernet_key
from orchard.errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cipher: Fernet | None = None

    def _fernet(self) -> Fernet:
        if self._cipher is None:
            from cryptography.fernet import Fernet

            self._cipher = Fernet(fernet_key(self._key))
        return self._cipher

    def seal(self, plaintext: str) -> str:
        return self._fernet().encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet().decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "a stored secret cannot be decrypted: ORCHARD_SECRET_KEY differs from the key "
                "it was encrypted with"
            ) from exc
