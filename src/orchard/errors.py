"""Orchard's domain errors and the one table that maps them to HTTP.

::

    OrchardError
    ├── InvalidInput          400  malformed names, versions, bodies
    │   └── ChecksumMismatch  400  declared and computed hashes differ
    ├── Unauthorized          401
    ├── Forbidden             403
    ├── NotFound              404
    ├── Conflict              409  immutability, duplicates, wrong offsets
    │   └── Ambiguous         409  a bare package name of several formats
    ├── Gone                  410
    ├── TooLarge              413
    ├── RangeNotSatisfiable   416
    ├── TooManyRequests       429  sign-in throttling
    ├── ConfigurationError    (start-up only; never reaches a client)
    ├── UpstreamError         502
    └── Unavailable           503  a backend went away
        └── StorageError      503
            ├── HashComputationError
            ├── ExistenceCheckError
            └── StorageUploadError

Core code raises these and never an ``HTTPException``; ``api/errors.py``
renders them as ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations


class OrchardError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(OrchardError):
    code = "invalid_input"


class ChecksumMismatch(InvalidInput):
    code = "checksum_mismatch"


class Unauthorized(OrchardError):
    code = "unauthorized"


class Forbidden(OrchardError):
    code = "forbidden"


class NotFound(OrchardError):
    code = "not_found"


class Conflict(OrchardError):
    code = "conflict"


class Ambiguous(Conflict):
    """A bare package name that packages of several formats answer to."""

    code = "ambiguous"


class Gone(OrchardError):
    code = "gone"


class TooLarge(OrchardError):
    code = "too_large"


class RangeNotSatisfiable(OrchardError):
    code = "range_not_satisfiable"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class TooManyRequests(OrchardError):
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(OrchardError):
    """A setting is wrong; raised at start-up, names the setting."""

    code = "configuration_error"


class UpstreamError(OrchardError):
    code = "upstream_error"


class Unavailable(OrchardError):
    code = "unavailable"


class StorageError(Unavailable):
    code = "storage_error"


class HashComputationError(StorageError):
    code = "storage_hash_error"


class ExistenceCheckError(StorageError):
    code = "storage_exists_error"


class StorageUploadError(StorageError):
    code = "storage_upload_error"


STATUS: dict[type[OrchardError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    RangeNotSatisfiable: 416,
    TooManyRequests: 429,
    UpstreamError: 502,
    Unavailable: 503,
    ConfigurationError: 500,
}


def status_for(exc: OrchardError) -> int:
    """The HTTP status of a domain error: the nearest class in STATUS."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500
