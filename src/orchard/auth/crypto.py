"""Encryption at rest for stored secrets (upstream credentials).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with a key derived
from the server's secret key. Ciphertexts never leave the server; the API
only says whether a secret is set.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from orchard.auth.keys import fernet_key
from orchard.errors import ConfigurationError


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(fernet_key(key))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "a stored secret cannot be decrypted: ORCHARD_SECRET_KEY differs from the key "
                "it was encrypted with"
            ) from exc
