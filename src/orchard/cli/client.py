"""Client commands: ``orchard upload`` and ``orchard download`` over HTTP."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

CHUNK = 1024 * 1024
RETRY_STATUSES = (409, 502, 503, 504)  # a chunk worth sending again (after a GET of the offset)
URL_OPTION = typer.Option(
    "http://127.0.0.1:8080", "--url", envvar="ORCHARD_URL", help="Orchard server"
)
TOKEN_OPTION = typer.Option(None, "--token", envvar="ORCHARD_TOKEN", help="API token")


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def _client(url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=url.rstrip("/"), headers=headers, timeout=httpx.Timeout(30.0, read=600.0)
    )


def _file_path(project: str, package: str, version: str, filename: str) -> str:
    p = [quote(x, safe="") for x in (project, package, version, filename)]
    return f"/api/v1/project/{p[0]}/packages/{p[1]}/versions/{p[2]}/files/{p[3]}"


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:
        return f"HTTP {response.status_code}"


def upload(
    project: str,
    package: str,
    version: str,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    filename: str | None = typer.Option(None, help="name to store (default: the file's)"),
    resumable: bool = typer.Option(False, help="send in chunks that survive interruptions"),
    chunk_size: int = typer.Option(64 * CHUNK, help="bytes per chunk when resumable"),
    retries: int = typer.Option(5, min=0, help="resumable: retries of a failing chunk"),
    url: str = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Upload FILE as a file of PROJECT/PACKAGE VERSION."""
    name = filename or file.name
    size = file.stat().st_size
    sha256 = _sha256_of(file)
    try:
        with _client(url, token) as http, _progress() as progress:
            task = progress.add_task(f"upload {name}", total=size)
            if resumable:
                response = _upload_resumable(
                    http,
                    progress,
                    task,
                    project,
                    package,
                    version,
                    name,
                    file,
                    size,
                    sha256,
                    chunk_size,
                    retries,
                )
            else:

                def body() -> Iterator[bytes]:
                    with file.open("rb") as fh:
                        while chunk := fh.read(CHUNK):
                            progress.advance(task, len(chunk))
                            yield chunk

                response = http.put(
                    _file_path(project, package, version, name),
                    content=body(),
                    headers={"X-Checksum-Sha256": sha256, "Content-Length": str(size)},
                )
    except httpx.HTTPError as exc:
        typer.echo(f"error: {url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if response.status_code >= 400:
        typer.echo(f"error: {_error(response)}", err=True)
        raise typer.Exit(1)
    data = response.json()
    note = "" if data.get("created", True) else " (already there, same content)"
    typer.echo(f"{data['sha256']}  {name}  {data['size']} bytes{note}")


def _upload_resumable(
    http: httpx.Client,
    progress: Progress,
    task: object,
    project: str,
    package: str,
    version: str,
    name: str,
    file: Path,
    size: int,
    sha256: str,
    chunk_size: int,
    retries: int,
) -> httpx.Response:
    created = http.post(
        "/api/v1/uploads",
        json={
            "project": project,
            "package": package,
            "version": version,
            "filename": name,
            "size": size,
        },
    )
    if created.status_code >= 400:
        return created
    upload_id = created.json()["id"]
    offset = 0
    failures = 0  # consecutive failed attempts at the current offset
    with file.open("rb") as fh:
        while offset < size:
            fh.seek(offset)
            chunk = fh.read(chunk_size)
            try:
                r: httpx.Response | None = http.patch(
                    f"/api/v1/uploads/{upload_id}",
                    content=chunk,
                    headers={"Upload-Offset": str(offset)},
                )
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code < 400:
                failures = 0
                offset = int(r.json()["offset"])
                progress.update(task, completed=offset)  # type: ignore[arg-type]
                continue
            if r is not None and r.status_code not in RETRY_STATUSES:
                return r
            # Ask the server where the upload stands, then try again from there;
            # give up (with the last answer) after ``retries`` failures in a row.
            failures += 1
            if failures > retries:
                if r is None:
                    raise httpx.TransportError(f"chunk at offset {offset} failed {failures} times")
                return r
            time.sleep(min(0.25 * 2 ** (failures - 1), 10.0))
            try:
                state = http.get(f"/api/v1/uploads/{upload_id}")
            except httpx.TransportError:
                continue
            if state.status_code >= 400:
                return state
            offset = int(state.json()["offset"])
            progress.update(task, completed=offset)  # type: ignore[arg-type]
    return http.post(f"/api/v1/uploads/{upload_id}/complete", json={"sha256": sha256})


def download(
    project: str,
    package: str,
    version: str,
    filename: str,
    output: Path | None = typer.Option(None, "-o", "--output", help="where to write"),
    url: str = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Download a file, verify its SHA-256, resume a partial download."""
    target = output or Path(filename)
    partial = target.with_name(target.name + ".part")
    try:
        with _client(url, token) as http:
            path = _file_path(project, package, version, filename)
            expected = _fetch(http, path, partial, filename)
            if expected is None:  # 416: the partial file is as long as the file, or longer
                partial.unlink(missing_ok=True)
                expected = _fetch(http, path, partial, filename)
    except httpx.HTTPError as exc:
        typer.echo(f"error: {url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    assert expected is not None
    actual = _sha256_of(partial)
    if expected and actual != expected:
        partial.unlink()
        typer.echo(f"error: checksum mismatch (expected {expected}, got {actual})", err=True)
        raise typer.Exit(1)
    os.replace(partial, target)
    typer.echo(f"{actual}  {target}")


def _fetch(http: httpx.Client, path: str, partial: Path, filename: str) -> str | None:
    """Fetch into ``partial``, resuming from its size. Returns the announced
    SHA-256 ("" when none), or None when the server refused the range (416)."""
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with http.stream("GET", path, headers=headers) as response:
        if response.status_code == 416:
            response.read()
            return None
        if response.status_code >= 400:
            response.read()
            typer.echo(f"error: {_error(response)}", err=True)
            raise typer.Exit(1)
        if response.status_code != 206:
            have = 0  # the server sent the whole file
        expected: str = response.headers.get("x-checksum-sha256", "")
        total = have + int(response.headers.get("content-length", 0))
        with _progress() as progress, partial.open("ab" if have else "wb") as out:
            task = progress.add_task(f"download {filename}", total=total, completed=have)
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                progress.advance(task, len(chunk))
    return expected
