"""Orchard's tables: artifact, project → package → version → file, and the
bookkeeping around them (upload sessions, dependencies, audit log).

``Artifact.ref_count`` is maintained by database triggers (see
``db/triggers.py``); application code never writes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orchard.db.base import Base, utcnow
from orchard.db.types import UTCDateTime


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha1: Mapped[str] = mapped_column(String(40))
    sha512: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    ref_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Last time an upload or a dereference touched the artifact; gc's grace
    # period counts from here.
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_artifacts_gc", "ref_count", "touched_at"),)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    upstream: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    packages: Mapped[list[Package]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class Package(Base):
    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(214))  # normalised per format
    display_name: Mapped[str] = mapped_column(String(214))
    format: Mapped[str] = mapped_column(String(16), default="generic")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="packages")
    versions: Mapped[list[Version]] = relationship(
        back_populates="package", cascade="all, delete-orphan", passive_deletes=True
    )

    # Name before format: a reference without a format looks up by name.
    __table_args__ = (
        UniqueConstraint("project_id", "name", "format", name="uq_packages_project_name_format"),
    )


class Version(Base):
    __tablename__ = "versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yank_reason: Mapped[str] = mapped_column(Text, default="")
    deprecated: Mapped[str] = mapped_column(Text, default="")
    # Format-specific metadata (package.json, METADATA fields, ...).
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    package: Mapped[Package] = relationship(back_populates="versions")
    files: Mapped[list[File]] = relationship(
        back_populates="version", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("package_id", "version", name="uq_versions_package_version"),
    )


class File(Base):
    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    artifact_id: Mapped[str] = mapped_column(
        ForeignKey("artifacts.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    version: Mapped[Version] = relationship(back_populates="files")
    artifact: Mapped[Artifact] = relationship()

    __table_args__ = (UniqueConstraint("version_id", "filename", name="uq_files_version_filename"),)


# Names that differ only in case are one name (migration 0005): one project
# per lower(name), one file per (version, lower(filename)).
Index("uq_projects_name_lower", func.lower(Project.name), unique=True)
Index("uq_files_version_filename_lower", File.version_id, func.lower(File.filename), unique=True)


class ArtifactDependency(Base):
    """A dependency declared inside an artifact (Requires-Dist, package.json, go.mod)."""

    __tablename__ = "artifact_dependencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[str] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    format: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(214))
    specifier: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32), default="runtime")


class UploadSession(Base):
    """A resumable upload in progress; its bytes are storage parts."""

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project: Mapped[str] = mapped_column(String(100))
    package: Mapped[str] = mapped_column(String(214))
    version: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(255))
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    parts: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[str] = mapped_column(String(150), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class UploadPart(Base):
    """One accepted chunk of a resumable upload; claiming ``index`` is what
    makes concurrent PATCHes at the same offset safe."""

    __tablename__ = "upload_parts"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(64), default="")
    # How the actor authenticated: session, token:<id>, basic, anonymous, system, cli.
    credential: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    """An API token; only the SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8))  # read | write
    projects: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None = all
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser; the cookie carries the id, the row its hash."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    user: Mapped[User] = relationship()


class ProjectMember(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(8))  # read | write | admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LoginFailure(Base):
    """Failed sign-ins per user and per address, for throttling."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UpstreamSource(Base):
    """An upstream registry managed through the API (settings add one more)."""

    __tablename__ = "upstream_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    format: Mapped[str] = mapped_column(String(16))  # pypi | npm | go
    url: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=10)  # lower is asked first
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    auth_type: Mapped[str] = mapped_column(String(8), default="none")  # none | basic | bearer
    username: Mapped[str] = mapped_column(String(255), default="")
    # The password or token, sealed with auth.crypto.SecretBox; never returned.
    secret_ciphertext: Mapped[str] = mapped_column(Text, default="")
    # Hosts (host or host:port, space-separated) besides the source's own origin that
    # its pages may link files to; empty = any public https host.
    file_hosts: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ContentEpoch(Base):
    """One row: a number that every committed change of what a read answers
    raises (database triggers, ``db/triggers.py``); servers drop their near
    cache when it moves (``cache/epoch.py``). Application code never writes it."""

    __tablename__ = "content_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class CachedUrl(Base):
    """An upstream URL whose bytes are stored: it is never fetched again."""

    __tablename__ = "cached_urls"

    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of url
    url: Mapped[str] = mapped_column(Text)
    artifact_id: Mapped[str] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    format: Mapped[str] = mapped_column(String(16))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
