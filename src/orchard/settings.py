"""Orchard's one typed settings object.

Every field is read from an ``ORCHARD_<FIELD>`` environment variable, or from
``orchard.toml`` in the working directory (or the file named by
``ORCHARD_CONFIG_FILE``). Environment variables win over the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from orchard.upstream.urls import check_upstream_url, mask, parse_file_hosts

# An nginx location prefix: /segment/.../ of URL-safe characters, no dot segments.
ACCEL_PREFIX = re.compile(r"/(?:(?!\.{1,2}/)[A-Za-z0-9._~-]+/)+")


def _toml_file() -> Path:
    return Path(os.environ.get("ORCHARD_CONFIG_FILE", "orchard.toml"))


def default_ui_dir() -> Path:
    """``frontend/dist`` of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "frontend" / "dist"


class Settings(BaseSettings):
    """All of Orchard's configuration. See docs/configuration.md."""

    # hide_input_in_errors: a refused value (an upstream URL with a token) is not echoed.
    model_config = SettingsConfigDict(
        env_prefix="ORCHARD_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(
        Path("./orchard-data"),
        description="ORCHARD_DATA_DIR: where the embedded database, blobs and staging live.",
    )
    database_url: str | None = Field(
        None,
        description="ORCHARD_DATABASE_URL: sqlite:///path or postgresql+psycopg://user@host/db. "
        "Default: orchard.db in the data dir.",
    )
    database_pool_size: int = Field(20, description="ORCHARD_DATABASE_POOL_SIZE")
    database_max_overflow: int = Field(30, description="ORCHARD_DATABASE_MAX_OVERFLOW")
    storage_url: str | None = Field(
        None,
        description="ORCHARD_STORAGE_URL: file:///path or s3://bucket/prefix. "
        "Default: the blobs folder in the data dir.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="ORCHARD_S3_ENDPOINT_URL: endpoint of an S3-compatible server."
    )
    s3_region: str = Field("us-east-1", description="ORCHARD_S3_REGION")
    s3_presigned_redirect: bool = Field(
        False,
        description="ORCHARD_S3_PRESIGNED_REDIRECT: answer downloads with a 307 redirect to a "
        "presigned S3 URL instead of streaming through Orchard.",
    )
    s3_presigned_ttl: int = Field(300, description="ORCHARD_S3_PRESIGNED_TTL: seconds.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="ORCHARD_FORWARDED_ALLOW_IPS: comma-separated addresses or networks of "
        "the proxies in front (or *); from them, X-Forwarded-For and X-Forwarded-Proto give "
        "the client's address and scheme, and X-Orchard-Accel is believed. Empty: none.",
    )
    accel_redirect: str | None = Field(
        None,
        description="ORCHARD_ACCEL_REDIRECT: with filesystem storage behind nginx, a path "
        "prefix such as /_orchard/blobs/ (an internal location aliasing the blobs folder): "
        "requests that carry X-Orchard-Accel: on get X-Accel-Redirect instead of a blob's "
        "bytes, and nginx sends the file. Unset: Orchard sends every file itself.",
    )
    redis_url: str | None = Field(
        None, description="ORCHARD_REDIS_URL: redis://host:port/db; unset = in-process cache."
    )
    base_url: str | None = Field(
        None, description="ORCHARD_BASE_URL: external URL used in links; default from request."
    )
    offline: bool = Field(False, description="ORCHARD_OFFLINE: never contact upstreams.")
    upstream_pypi_url: str | None = Field(
        None,
        description="ORCHARD_UPSTREAM_PYPI_URL: the PyPI-style simple index proxied first; "
        "unset = discovered from pip's configuration, empty = none.",
    )
    upstream_npm_url: str | None = Field(
        None,
        description="ORCHARD_UPSTREAM_NPM_URL: the npm registry proxied first; unset = "
        "`npm config get registry`, empty = none.",
    )
    upstream_pypi_file_hosts: str = Field(
        "",
        description="ORCHARD_UPSTREAM_PYPI_FILE_HOSTS: comma-separated hosts (or host:port) "
        "besides the upstream's own origin that its pages may link files to; empty = any "
        "public https host.",
    )
    upstream_go_url: str | None = Field(
        None,
        description="ORCHARD_UPSTREAM_GO_URL: the Go module proxy proxied first; unset = the "
        "first proxy of `go env GOPROXY`, empty = none.",
    )
    admin_password: SecretStr | None = Field(
        None, description="ORCHARD_ADMIN_PASSWORD: first-start admin password."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="ORCHARD_SECRET_KEY: signs session cookies and encrypts stored secrets. "
        "Default: generated once into secret.key in the data dir (set it explicitly when "
        "several replicas serve one database).",
    )
    session_ttl: int = Field(
        12 * 3600, description="ORCHARD_SESSION_TTL: seconds a web sign-in stays valid."
    )
    cookie_secure: bool = Field(
        False, description="ORCHARD_COOKIE_SECURE: mark the session cookie Secure (HTTPS only)."
    )
    login_max_failures: int = Field(
        5, description="ORCHARD_LOGIN_MAX_FAILURES: failed sign-ins before throttling starts."
    )
    max_upload_size: int = Field(
        10 * 1024**3,
        description="ORCHARD_MAX_UPLOAD_SIZE: largest accepted file in bytes (413 above).",
    )
    upload_session_ttl: int = Field(
        24 * 3600,
        description="ORCHARD_UPLOAD_SESSION_TTL: seconds an idle resumable upload is kept.",
    )
    gc_grace: int = Field(
        3600, description="ORCHARD_GC_GRACE: seconds an unreferenced artifact is kept."
    )
    ui_dir: Path = Field(
        default_factory=default_ui_dir,
        description="ORCHARD_UI_DIR: the built web UI (index.html and assets/) served at /. "
        "Default: frontend/dist of the source checkout (built by scripts/setup.sh).",
    )
    dev: bool = Field(False, description="ORCHARD_DEV: development mode; seeds example data.")
    log_level: str = Field("INFO", description="ORCHARD_LOG_LEVEL")
    log_json: bool = Field(True, description="ORCHARD_LOG_JSON: structured JSON log lines.")

    http_max_connections: int = Field(100, description="ORCHARD_HTTP_MAX_CONNECTIONS")
    http_max_keepalive: int = Field(20, description="ORCHARD_HTTP_MAX_KEEPALIVE")
    http_connect_timeout: float = Field(30.0, description="ORCHARD_HTTP_CONNECT_TIMEOUT")
    http_read_timeout: float = Field(60.0, description="ORCHARD_HTTP_READ_TIMEOUT")
    http_worker_threads: int = Field(32, description="ORCHARD_HTTP_WORKER_THREADS")
    server_io_threads: int = Field(
        2,
        ge=1,
        description="ORCHARD_SERVER_IO_THREADS: threads of the HTTP server (granian) for "
        "blocking I/O such as reading files it sends from disk, per process.",
    )
    server_backlog: int = Field(
        2048,
        ge=16,
        description="ORCHARD_SERVER_BACKLOG: connections the kernel queues before the server "
        "accepts them (a CI fleet opens many at once).",
    )
    server_backpressure: int = Field(
        8192,
        ge=1,
        description="ORCHARD_SERVER_BACKPRESSURE: requests one worker process handles at "
        "once; further connections wait in the backlog instead of growing memory.",
    )
    server_header_timeout: float = Field(
        10.0,
        gt=0,
        description="ORCHARD_SERVER_HEADER_TIMEOUT: seconds a client has to send a request's "
        "headers; a slower connection is closed.",
    )
    server_keepalive_timeout: float = Field(
        30.0,
        gt=0,
        description="ORCHARD_SERVER_KEEPALIVE_TIMEOUT: seconds an idle keep-alive connection "
        "is kept open between requests (granian has one HTTP/1 timer for this and the header "
        "timeout: the shorter of the two applies to both).",
    )
    server_body_timeout: float = Field(
        60.0,
        gt=0,
        description="ORCHARD_SERVER_BODY_TIMEOUT: seconds an upload may send nothing before it "
        "is refused (408) and its partial bytes dropped.",
    )

    cache_ttl_index: int = Field(300, description="ORCHARD_CACHE_TTL_INDEX")
    cache_ttl_versions: int = Field(300, description="ORCHARD_CACHE_TTL_VERSIONS")
    cache_ttl_upstream: int = Field(3600, description="ORCHARD_CACHE_TTL_UPSTREAM")
    cache_ttl_local: float = Field(
        30.0,
        ge=0,
        description=(
            "ORCHARD_CACHE_TTL_LOCAL: seconds an anonymous protocol answer (index page, file"
            " location) is kept ready in this process's memory; every write through this"
            " server (its workers, and with Redis any replica) drops them at once. 0 disables."
        ),
    )
    cache_local_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=0,
        description="ORCHARD_CACHE_LOCAL_MAX_BYTES: memory cap of those ready answers.",
    )

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, v: str) -> str:
        from orchard.forwarded import parse

        try:
            parse(v)
        except ValueError as exc:
            raise ValueError(f"not a list of addresses or networks: {exc}") from exc
        return v

    @field_validator("accel_redirect")
    @classmethod
    def _accel_prefix(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not ACCEL_PREFIX.fullmatch(v):
            raise ValueError(
                "must be an absolute path prefix ending in '/' made of letters, digits and "
                "'._~-' (no '..'), such as /_orchard/blobs/"
            )
        return v

    @field_validator("upstream_pypi_url", "upstream_npm_url", "upstream_go_url")
    @classmethod
    def _upstream_url(cls, v: str | None) -> str | None:
        """As the upstreams API: http(s), no query or fragment; unlike the API,
        user info is kept (sent as Basic auth to that origin, shown masked)."""
        if v is None or not v.strip():
            return v if v is None else ""
        return check_upstream_url(v.strip(), credentials_allowed=True)

    @field_validator("upstream_pypi_file_hosts")
    @classmethod
    def _file_hosts(cls, v: str) -> str:
        return ",".join(parse_file_hosts(v))

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_file()),
        )

    # Derived values -------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'orchard.db'}"

    @property
    def effective_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "blobs").as_uri()

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def public(self) -> dict[str, Any]:
        """Settings safe to show: secrets removed."""
        data = self.model_dump(mode="json")
        data["admin_password"] = "***" if self.admin_password else None
        data["secret_key"] = "***" if self.secret_key else None
        for key in ("upstream_pypi_url", "upstream_npm_url", "upstream_go_url"):
            if data.get(key):
                data[key] = mask(data[key])
        return data
