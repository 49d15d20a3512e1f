"""Client commands: ``orchard upload`` and ``orchard download`` over HTTP."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TransferSpeedColumn,
    TimeRemainingColumn,
)

CHUNK = 1024 * 1024
URL_OPTION = typer.Option("http://127.0.0.1:8080", "--url", envvar="ORCHARD_URL",
                          help="Orchard server")
TOKEN_OPTION = typer.Option(None, "--token", envvar="ORCHARD_TOKEN", help="API token")


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(), transient=False,
    )


def _client(url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers,
                        timeout=httpx.Timeout(30.0, read=600.0))


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
    project: str, package: str, version: str,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    filename: str | None = typer.Option(None, help="name to store (default: the file's)"),
    resumable: bool = typer.Option(False, help="send in chunks that survive interruptions"),
    chunk_size: int = typer.Option(64 * CHUNK, help="bytes per chunk when resumable"),
    url: str = URL_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Upload FILE as a file of PROJECT/PACKAGE VERSION."""
    name = filename or file.name
    size = file.stat().st_size
    sha256 = _sha256_of(file)
    with _client(url, token) as http, _progress() as progress:
        task = progress.add_task(f"upload {name}", total=size)
        if resumable:
            response = _upload_resumable(http, progress, task, project, package, version, name,
                                         file, size, sha256, chunk_size)
        else:
            def body() -> Iterator[bytes]:
                with file.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        progress.advance(task, len(chunk))
                        yield chunk
            response = http.put(
                _file_path(project, package, version, name), content=body(),
                headers={"X-Checksum-Sha256": sha256, "Content-Length": str(size)},
            )
    if response.status_code >= 400:
        typer.echo(f"error: {_error(response)}", err=True)
        raise typer.Exit(1)
    data = response.json()
    note = " (already stored: deduplicated)" if data["deduplicated"] else ""
    typer.echo(f"{data['sha256']}  {name}  {data['size']} bytes{note}")


def _upload_resumable(http: httpx.Client, progress: Progress, task: object, project: str,
                      package: str, version: str, name: str, file: Path, size: int,
                      sha256: str, chunk_size: int) -> httpx.Response:
    created = http.post("/api/v1/uploads", json={"project": project, "package": package,
                                                  "version": version, "filename": name,
                                                  "size": size})
    if created.status_code >= 400:
        return created
    upload_id = created.json()["id"]
    offset = 0
    with file.open("rb") as fh:
        while offset < size:
            fh.seek(offset)
            chunk = fh.read(chunk_size)
            try:
                r = http.patch(f"/api/v1/uploads/{upload_id}", content=chunk,
                               headers={"Upload-Offset": str(offset)})
            except httpx.TransportError:
                r = None
            if r is None or r.status_code in (409, 502, 503, 504):
                offset = int(http.get(f"/api/v1/uploads/{upload_id}").json()["offset"])
                progress.update(task, completed=offset)  # type: ignore[arg-type]
                continue
            if r.status_code >= 400:
                return r
            offset = int(r.json()["offset"])
            progress.update(task, completed=offset)  # type: ignore[arg-type]
    return http.post(f"/api/v1/uploads/{upload_id}/complete", json={"sha256": sha256})


def download(
    project: str, package: str, version: str, filename: str,
    output: Path | None = typer.Option(None, "-o", "--output", help="where to write"),
    url: str = URL_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Download a file, verify its SHA-256, resume a partial download."""
    target = output or Path(filename)
    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with _client(url, token) as http, http.stream(
        "GET", _file_path(project, package, version, filename), headers=headers
    ) as response:
        if response.status_code == 416:
            have = 0
        elif response.status_code >= 400:
            response.read()
            typer.echo(f"error: {_error(response)}", err=True)
            raise typer.Exit(1)
        if response.status_code != 206:
            have = 0
        expected = response.headers.get("x-checksum-sha256", "")
        total = have + int(response.headers.get("content-length", 0))
        with _progress() as progress, partial.open("ab" if have else "wb") as out:
            task = progress.add_task(f"download {filename}", total=total, completed=have)
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                progress.advance(task, len(chunk))
    actual = _sha256_of(partial)
    if expected and actual != expected:
        partial.unlink()
        typer.echo(f"error: checksum mismatch (expected {expected}, got {actual})", err=True)
        raise typer.Exit(1)
    os.replace(partial, target)
    typer.echo(f"{actual}  {target}")
