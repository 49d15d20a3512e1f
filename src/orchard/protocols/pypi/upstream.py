"""Reading project pages from upstream simple indexes (PEP 503 HTML and
PEP 691 JSON), with conditional requests.

What comes out is a list of ``UpstreamFile``: plain data, JSON-serialisable
for the cache, with the upstream's absolute file URL (no fragment) and the
hashes, yank state and metadata-sidecar hash it advertised.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from orchard.upstream.client import HTTPError, UpstreamClient, UpstreamResponse
from orchard.upstream.documents import Answer
from orchard.upstream.sources import Source
from orchard.upstream.urls import mask

log = logging.getLogger("orchard.upstream")

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
HASH_NAMES = ("sha256", "sha512", "sha384", "sha224", "sha1", "md5")
MAX_PAGE_BYTES = 64 * 1024 * 1024


@dataclass
class UpstreamFile:
    filename: str
    url: str  # absolute upstream URL without fragment
    hashes: dict[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: dict[str, str] | None = None  # None: no sidecar; {}: one without hash
    size: int | None = None
    upload_time: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "url": self.url,
            "hashes": dict(self.hashes),
            "requires_python": self.requires_python,
            "yanked": self.yanked,
            "core_metadata": (
                dict(self.core_metadata) if self.core_metadata is not None else None
            ),
            "size": self.size,
            "upload_time": self.upload_time,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpstreamFile:
        return cls(**data)


def _hashes(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k).lower(): str(v).lower()
        for k, v in value.items()
        if str(k).lower() in HASH_NAMES and isinstance(v, str)
    }


def _metadata_attr(value: str | None) -> dict[str, str] | None:
    """``data-core-metadata`` → {} (true), {"sha256": hex}, or None."""
    if value is None:
        return None
    value = value.strip()
    if value.lower() == "false":
        return None
    if value.lower() == "true" or not value:
        return {}
    algo, sep, digest = value.partition("=")
    return {algo.lower(): digest.lower()} if sep and algo.lower() in HASH_NAMES else {}


def _fragment_hashes(url: str) -> tuple[str, dict[str, str]]:
    clean, fragment = urldefrag(url)
    algo, sep, digest = fragment.partition("=")
    if sep and algo.lower() in HASH_NAMES:
        return clean, {algo.lower(): digest.lower()}
    return clean, {}


def _filename_of(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def parse_json(body: bytes, base_url: str) -> list[UpstreamFile]:
    data = json.loads(body)
    files: list[UpstreamFile] = []
    for item in data.get("files", []):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        url, frag = _fragment_hashes(urljoin(base_url, item["url"]))
        filename = item.get("filename") or _filename_of(url)
        meta = item.get("core-metadata", item.get("dist-info-metadata"))
        core: dict[str, str] | None
        if meta is True:
            core = {}
        elif isinstance(meta, dict):
            core = _hashes(meta)
        else:
            core = None
        yanked = item.get("yanked", False)
        size = item.get("size")
        files.append(
            UpstreamFile(
                filename=str(filename),
                url=url,
                hashes=_hashes(item.get("hashes")) or frag,
                requires_python=item.get("requires-python") or None,
                yanked=yanked if isinstance(yanked, (bool, str)) else bool(yanked),
                core_metadata=core,
                size=size if isinstance(size, int) else None,
                upload_time=item.get("upload-time") or None,
            )
        )
    return files


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def parse_html(body: bytes, base_url: str) -> list[UpstreamFile]:
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    parser.close()
    files: list[UpstreamFile] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, hashes = _fragment_hashes(urljoin(base_url, href))
        yanked_attr = attrs.get("data-yanked", False)
        yanked: bool | str = (yanked_attr or True) if yanked_attr is not False else False
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        files.append(
            UpstreamFile(
                filename=_filename_of(url) or text,
                url=url,
                hashes=hashes,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=yanked,
                core_metadata=_metadata_attr(meta)
                if "data-core-metadata" in attrs or "data-dist-info-metadata" in attrs
                else None,
            )
        )
    return files


async def fetch_source_page(
    http: UpstreamClient,
    source: Source,
    name: str,
    headers: dict[str, str],
    etag: str | None = None,
    last_modified: str | None = None,
) -> Answer[list[UpstreamFile]]:
    """GET ``{source}/{name}/``; ``headers`` carries the source's credentials."""
    url = f"{source.url}/{name}/"
    request_headers = {"Accept": ACCEPT, **headers}
    if etag:
        request_headers["If-None-Match"] = etag
    if last_modified:
        request_headers["If-Modified-Since"] = last_modified
    try:
        async with http.stream("GET", url, headers=request_headers, rule=source.rule) as response:
            if response.status_code == 304:
                return Answer("not_modified", etag=etag, last_modified=last_modified)
            if response.status_code in (404, 410):
                return Answer("missing")
            if response.status_code != 200:
                log.warning(
                    "upstream %s answered %s for %s", source.name, response.status_code, name
                )
                return Answer("error", error=f"HTTP {response.status_code}")
            body = await _read_capped(response, MAX_PAGE_BYTES)
    except HTTPError as exc:
        log.warning("upstream %s unreachable for %s: %s", source.name, name, type(exc).__name__)
        return Answer("error", error=f"{type(exc).__name__}")
    if body is None:
        log.warning("upstream %s sent a page over the size limit for %s", source.name, name)
        return Answer("error", error="page too large")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    base = response.url
    parse = parse_json if content_type.endswith("json") else parse_html
    try:
        files = parse(body, base)
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("upstream %s sent a malformed page for %s: %s", source.name, name, exc)
        return Answer("error", error="malformed page")
    return Answer(
        "ok",
        allowed_links(source, name, files),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
    )


def allowed_links(source: Source, name: str, files: list[UpstreamFile]) -> list[UpstreamFile]:
    """The files whose links Orchard may follow (the source's own origin, its
    allowed file hosts, or with none allowed any public https host); the
    others are dropped from the page, with one log line per page."""
    verdicts = source.rule.allows_links(f.url for f in files)
    kept = [f for f, ok in zip(files, verdicts, strict=True) if ok]
    if len(kept) != len(files):
        dropped = [f for f, ok in zip(files, verdicts, strict=True) if not ok]
        log.warning(
            "upstream %s: dropped %d link(s) of %s to hosts it may not send Orchard to "
            "(first: %s)",
            source.name,
            len(dropped),
            name,
            mask(dropped[0].url),
            extra={"event": "upstream_link_dropped"},
        )
    return kept


async def _read_capped(response: UpstreamResponse, limit: int) -> bytes | None:
    """The (decoded) body, or None as soon as it grows past ``limit`` bytes:
    neither an endless page nor a compression bomb is read to its end."""
    declared = response.headers.get("content-length", "")
    plain = "content-encoding" not in response.headers
    if plain and declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)
