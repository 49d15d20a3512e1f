"""The server's secret key: ORCHARD_SECRET_KEY, or one generated into the
data dir on first use (mode 0600). It signs session cookies and encrypts
stored secrets such as upstream credentials."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from orchard.db.session import prepare_data_dir
from orchard.settings import Settings


def secret_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    prepare_data_dir(settings)  # 0700, and an existing key file 0600
    path = settings.data_dir / "secret.key"
    if not path.exists():
        _write_new_key(path)
    return path.read_bytes().strip()


def _write_new_key(path: Path) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_urlsafe(48).encode())
    try:
        os.link(tmp, path)  # first writer wins when replicas race
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def derive(key: bytes, purpose: str) -> bytes:
    """A 32-byte subkey for one purpose, so one secret serves several."""
    return hashlib.blake2b(key, key=purpose.encode(), digest_size=32).digest()


def fernet_key(key: bytes) -> bytes:
    return base64.urlsafe_b64encode(derive(key, "orchard-secrets"))
