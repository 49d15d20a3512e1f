"""Projects, packages and versions: lookups, creation and deletion.

Deleting cascades in the database (ON DELETE CASCADE); the ref_count
triggers see every File row that goes, so blobs become collectable.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core import names
from orchard.core.audit import Actor, record
from orchard.db.base import utcnow
from orchard.db.models import File, Package, Project, Version
from orchard.errors import Ambiguous, Conflict, Forbidden, InvalidInput, NotFound

log = logging.getLogger("orchard.catalog")

PROXY_PROJECT = "proxy"


def dialect_insert(dialect: str) -> Any:
    """The ``insert`` construct (with ON CONFLICT) of a dialect by name."""
    if dialect == "postgresql":
        # Imported here: the dialect's module costs ~2 MB in an SQLite server.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    return sqlite.insert


def insert_for(session: AsyncSession, model: type[Any]) -> Any:
    """A dialect-specific INSERT that supports ON CONFLICT."""
    return dialect_insert(session.get_bind().dialect.name)(model)


async def get_project(session: AsyncSession, name: str) -> Project:
    names.project_name(name)  # a bad name is a 400 (and never reaches the database)
    project = await session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"project {name!r} not found")
    return project


async def list_projects(
    session: AsyncSession,
    query: str | None = None,
    limit: int = 100,
    offset: int = 0,
    visible: ColumnElement[bool] | None = None,
) -> list[Project]:
    """Projects by name; ``visible`` is the caller's visibility filter."""
    names.query_term("query", query)
    stmt = select(Project).order_by(Project.name).limit(limit).offset(offset)
    if visible is not None:
        stmt = stmt.where(visible)
    if query:
        stmt = stmt.where(func.lower(Project.name).contains(query.lower(), autoescape=True))
    return list(await session.scalars(stmt))


async def _refuse_taken_name(
    session: AsyncSession, name: str, visible: ColumnElement[bool] | None
) -> None:
    taken = await session.scalar(
        select(Project).where(func.lower(Project.name) == name.lower()).limit(1)
    )
    if taken is None:
        return
    shown = visible is None or (
        await session.scalar(select(Project.id).where(Project.id == taken.id, visible))
    ) is not None
    if not shown:
        raise Conflict(f"project name {name!r} is not available")
    if taken.name == name:
        raise Conflict(f"project {name!r} already exists")
    raise Conflict(f"project {name!r} would differ only in case from project {taken.name!r}")


async def create_project(
    session: AsyncSession,
    actor: Actor,
    name: str,
    description: str = "",
    is_public: bool = True,
    upstream: bool = True,
    visible: ColumnElement[bool] | None = None,
) -> Project:
    """Create a project. Names that differ only in case are one name.
    ``visible`` is the caller's visibility filter: a clash with a project
    the caller cannot see says only that the name is not available."""
    names.project_name(name)
    names.free_text("description", description)
    await _refuse_taken_name(session, name, visible)
    project = Project(name=name, description=description, is_public=is_public, upstream=upstream)
    session.add(project)
    await session.flush()
    record(session, actor, "project.create", name)
    return project


def ensure_writable(project: Project) -> None:
    if project.builtin:
        raise Forbidden(f"project {project.name!r} is read-only")


async def update_project(
    session: AsyncSession, actor: Actor, project: Project, changes: dict[str, Any]
) -> Project:
    ensure_writable(project)
    names.free_text("description", changes.get("description"))
    for key in ("description", "is_public", "upstream"):
        if key in changes and changes[key] is not None:
            setattr(project, key, changes[key])
    record(session, actor, "project.update", project.name, changes=changes)
    await session.flush()
    return project


async def _artifacts_under(session: AsyncSession, where: ColumnElement[bool]) -> list[str]:
    """The artifact ids a cascade delete is about to dereference (for the log)."""
    stmt = (
        select(File.artifact_id)
        .join(Version, File.version_id == Version.id)
        .join(Package, Version.package_id == Package.id)
        .where(where)
        .distinct()
        .limit(1000)
    )
    return sorted(await session.scalars(stmt))


async def delete_project(session: AsyncSession, actor: Actor, project: Project) -> None:
    ensure_writable(project)
    artifacts = await _artifacts_under(session, Package.project_id == project.id)
    record(session, actor, "project.delete", project.name, artifacts=artifacts)
    log.info(
        "project deleted",
        extra={"event": "delete", "project": project.name, "artifacts": artifacts},
    )
    await session.delete(project)
    await session.flush()


FORMAT_SEPARATOR = ":"  # a reference ``npm:yaml``; no format allows ``:`` in a name


def _spellings(name: str) -> set[tuple[str, str]]:
    """(format, key) of each format whose rules accept ``name``."""
    found = set()
    for fmt in names.FORMATS:
        with contextlib.suppress(InvalidInput):
            found.add((fmt, names.package_name(name, fmt)))
    return found


def split_reference(ref: str) -> tuple[str | None, str]:
    """``npm:yaml`` → (``npm``, ``yaml``); a bare ``yaml`` → (None, ``yaml``).
    Both parts are checked (InvalidInput): a format must be known and the
    name must pass the name check (of that format, or of every format)."""
    fmt, sep, name = ref.partition(FORMAT_SEPARATOR)
    if not sep:
        if not _spellings(ref):
            raise InvalidInput(f"invalid package name {ref!r}")
        return None, ref
    names.package_format(fmt)
    names.package_name(name, fmt)
    return fmt, name


def _same_package(project: Project, fmt: str, key: str) -> ColumnElement[bool]:
    return and_(Package.project_id == project.id, Package.name == key, Package.format == fmt)


async def resolve_package(session: AsyncSession, project: Project, ref: str) -> Package:
    """The package ``ref`` names in ``project``: ``format:name`` is that
    format's package (the name normalised by its rules); a bare name is the
    one package of any format whose normalised name it spells (generic
    ``Foo_Bar`` or pypi ``foo-bar``): none is NotFound, several Conflict."""
    fmt, name = split_reference(ref)
    if fmt is not None:
        key = names.package_name(name, fmt)
        package = await session.scalar(select(Package).where(_same_package(project, fmt, key)))
        if package is None:
            raise NotFound(f"package {ref!r} not found in project {project.name!r}")
        return package
    spellings = _spellings(name)
    found = list(
        await session.scalars(
            select(Package)
            .where(or_(*(_same_package(project, f, key) for f, key in sorted(spellings))))
            .order_by(Package.format)
        )
    )
    if not found:
        raise NotFound(f"package {name!r} not found in project {project.name!r}")
    if len(found) > 1:
        raise Ambiguous(
            f"package name {name!r} is ambiguous in project {project.name!r}: name one of "
            + ", ".join(f"{p.format}{FORMAT_SEPARATOR}{p.display_name}" for p in found)
        )
    return found[0]


async def list_packages(
    session: AsyncSession,
    project: Project,
    limit: int = 100,
    offset: int = 0,
    fmt: str | None = None,
) -> list[Package]:
    stmt = (
        select(Package)
        .where(Package.project_id == project.id)
        .order_by(Package.name, Package.format)
        .limit(limit)
        .offset(offset)
    )
    if fmt is not None:
        stmt = stmt.where(Package.format == names.package_format(fmt))
    return list(await session.scalars(stmt))


async def ensure_package(
    session: AsyncSession,
    project: Project,
    name: str,
    fmt: str = "generic",
    description: str = "",
    *,
    hosted: bool = True,
) -> tuple[Package, bool]:
    """Get or create the ``fmt`` package ``name``, race-safe. Returns
    (package, created). ``hosted``: a package made here, whose name meets
    the format's rules for new names (cached packages may have legacy
    names that still exist upstream)."""
    key = names.package_name(name, fmt)
    stmt = (
        insert_for(session, Package)
        .values(
            project_id=project.id,
            name=key,
            display_name=name,
            format=fmt,
            description=description,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["project_id", "name", "format"])
        .returning(Package.id)
    )
    created_id = await session.scalar(stmt)
    if created_id is not None and hosted:
        names.new_package_name(name, fmt)  # the caller's transaction rolls the row back
    package = await session.scalar(select(Package).where(_same_package(project, fmt, key)))
    assert package is not None
    return package, created_id is not None


async def package_for_write(session: AsyncSession, project: Project, ref: str) -> Package:
    """The package a write to ``ref`` goes to: ``format:name`` gets or
    creates that format's package; a bare name the one package it resolves
    to (Conflict if several), else a new generic package."""
    fmt, name = split_reference(ref)
    if fmt is None:
        try:
            return await resolve_package(session, project, name)
        except NotFound:
            fmt = "generic"
    package, _ = await ensure_package(session, project, name, fmt)
    return package


async def create_package(
    session: AsyncSession,
    actor: Actor,
    project: Project,
    name: str,
    fmt: str = "generic",
    description: str = "",
) -> Package:
    ensure_writable(project)
    names.free_text("description", description)
    package, created = await ensure_package(session, project, name, fmt, description)
    if not created:
        raise Conflict(
            f"{fmt} package {name!r} already exists in project {project.name!r}"
        )
    record(session, actor, "package.create", f"{project.name}/{package.name}", format=fmt)
    return package


async def delete_package(
    session: AsyncSession, actor: Actor, project: Project, package: Package
) -> None:
    ensure_writable(project)
    artifacts = await _artifacts_under(session, Package.id == package.id)
    record(session, actor, "package.delete", f"{project.name}/{package.name}", artifacts=artifacts)
    log.info(
        "package deleted",
        extra={
            "event": "delete",
            "project": project.name,
            "package": package.name,
            "artifacts": artifacts,
        },
    )
    await session.delete(package)
    await session.flush()


async def get_version(session: AsyncSession, package: Package, version: str) -> Version:
    names.version_string(version)
    row = await session.scalar(
        select(Version).where(Version.package_id == package.id, Version.version == version)
    )
    if row is None:
        raise NotFound(f"version {version!r} of package {package.name!r} not found")
    return row


async def list_versions(session: AsyncSession, package: Package) -> list[Version]:
    stmt = select(Version).where(Version.package_id == package.id).order_by(Version.id.desc())
    return list(await session.scalars(stmt))


async def ensure_version(session: AsyncSession, package: Package, version: str) -> Version:
    names.version_string(version)
    stmt = (
        insert_for(session, Version)
        .values(package_id=package.id, version=version, created_at=utcnow(), meta={})
        .on_conflict_do_nothing(index_elements=["package_id", "version"])
    )
    await session.execute(stmt)
    return await get_version(session, package, version)


async def delete_version(
    session: AsyncSession, actor: Actor, project: Project, package: Package, version: Version
) -> None:
    ensure_writable(project)
    target = f"{project.name}/{package.name}/{version.version}"
    artifacts = await _artifacts_under(session, Version.id == version.id)
    record(session, actor, "version.delete", target, artifacts=artifacts)
    log.info("version deleted", extra={"event": "delete", "target": target, "artifacts": artifacts})
    await session.delete(version)
    await session.flush()


async def update_version(
    session: AsyncSession,
    actor: Actor,
    project: Project,
    version: Version,
    changes: dict[str, Any],
) -> Version:
    """Yank/unyank and deprecate: flags only; the files never change."""
    ensure_writable(project)
    names.free_text("yank reason", changes.get("yank_reason"))
    names.free_text("deprecation message", changes.get("deprecated"))
    for key in ("yanked", "yank_reason", "deprecated"):
        if key in changes and changes[key] is not None:
            setattr(version, key, changes[key])
    package = await session.get(Package, version.package_id)  # already loaded: no query
    assert package is not None
    target = f"{project.name}/{package.name}/{version.version}"
    record(session, actor, "version.update", target, changes=changes)
    await session.flush()
    return version


async def list_files(session: AsyncSession, version: Version) -> list[File]:
    stmt = select(File).where(File.version_id == version.id).order_by(File.filename)
    return list(await session.scalars(stmt))


async def refuse_case_clash(session: AsyncSession, version: Version, filename: str) -> None:
    """Refuse (Conflict) a file name of ``version`` that differs only in case
    from one it has (the database refuses it too: migration 0005)."""
    other = await session.scalar(
        select(File.filename)
        .where(
            File.version_id == version.id,
            func.lower(File.filename) == func.lower(filename),  # as the index folds
            File.filename != filename,
        )
        .limit(1)
    )
    if other is not None:
        raise Conflict(
            f"file {filename!r} would differ only in case from file {other!r} "
            f"of version {version.version!r}"
        )


async def get_file(session: AsyncSession, version: Version, filename: str) -> File:
    names.filename(filename)
    row = await session.scalar(
        select(File).where(File.version_id == version.id, File.filename == filename)
    )
    if row is None:
        raise NotFound(f"file {filename!r} not found in version {version.version!r}")
    return row
