#!/usr/bin/env python3
"""Write a static PEP 503 (HTML) + PEP 691 (JSON) simple index over a directory of wheels.

Layout under OUT (served by nginx, see ../nginx/bench.conf):

  OUT/simple/index.html            PEP 503 project list
  OUT/simple/index.v1_json         PEP 691 project list (for Accept: ...pypi.simple.v1+json)
  OUT/simple/<name>/index.html     PEP 503 page; links carry #sha256= and data-requires-python
  OUT/simple/<name>/index.v1_json  PEP 691 page (api-version 1.1: hashes, requires-python, size)

The files themselves are served from the wheel directory at BASE_URL/files/<filename>
(absolute URLs, as on the public index).  Standard library only.

  gen_index.py --wheels /tmp/bench-wheels --out /tmp/bench-upstream --base-url http://127.0.0.1:18000
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import html
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

HEAD = '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_filename(filename: str) -> tuple[str, str]:
    """(project, version) of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return parts[0], parts[1]
    for ext in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(ext):
            name, _, version = filename[: -len(ext)].rpartition("-")
            return name, version
    raise ValueError(f"unrecognised distribution file name: {filename}")


def requires_python(path: Path) -> str | None:
    if path.suffix != ".whl":
        return None
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if member.count("/") == 1 and member.endswith(".dist-info/METADATA"):
                msg = email.parser.BytesHeaderParser().parsebytes(zf.read(member))
                return msg.get("Requires-Python")
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def project_html(name: str, files: list[dict[str, Any]]) -> str:
    lines = [f"{HEAD}<title>Links for {name}</title></head><body><h1>Links for {name}</h1>"]
    for x in files:
        rp = x["requires-python"]
        attr = f' data-requires-python="{html.escape(rp, quote=True)}"' if rp else ""
        href = f"{x['url']}#sha256={x['hashes']['sha256']}"
        lines.append(f'<a href="{href}"{attr}>{x["filename"]}</a><br/>')
    lines.append("</body></html>\n")
    return "\n".join(lines)


def project_json(name: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("filename", "url", "hashes", "requires-python", "size")
    return {
        "meta": {"api-version": "1.1"},
        "name": name,
        "versions": sorted({x["version"] for x in files}),
        "files": [{k: x[k] for k in keys} for x in files],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--base-url", required=True)
    a = ap.parse_args()

    base = a.base_url.rstrip("/")
    projects: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(a.wheels.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        name, version = parse_filename(path.name)
        projects.setdefault(normalize(name), []).append(
            {
                "filename": path.name,
                "version": version,
                "url": f"{base}/files/{path.name}",
                "hashes": {"sha256": sha256(path)},
                "requires-python": requires_python(path),
                "size": path.stat().st_size,
            }
        )

    simple = a.out / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    names = sorted(projects)
    links = "\n".join(f'<a href="{n}/">{n}</a>' for n in names)
    (simple / "index.html").write_text(
        f"{HEAD}<title>Simple index</title></head><body>\n{links}\n</body></html>\n"
    )
    listing = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
    (simple / "index.v1_json").write_text(json.dumps(listing))
    for name, files in projects.items():
        page = simple / name
        page.mkdir(exist_ok=True)
        (page / "index.html").write_text(project_html(name, files))
        (page / "index.v1_json").write_text(json.dumps(project_json(name, files)))
    n_files = sum(len(v) for v in projects.values())
    print(f"gen_index: {len(projects)} projects, {n_files} files -> {simple}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
