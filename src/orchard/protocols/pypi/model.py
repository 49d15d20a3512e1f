"""What a simple-API project page is made of, whoever produced it (hosted
packages from the database, or an upstream index through the proxy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class DistFile:
    filename: str
    url: str  # where the client downloads it: always an Orchard URL
    version: str
    hashes: dict[str, str] = field(default_factory=dict)  # {"sha256": hex, ...}
    size: int | None = None
    requires_python: str | None = None
    yanked: bool | str = False  # False, True, or the reason
    upload_time: datetime | None = None
    # PEP 658: hash of the .metadata sidecar; None = no sidecar offered.
    core_metadata: dict[str, str] | None = None


@dataclass
class ProjectPage:
    name: str  # the project's name as the index spells it
    files: list[DistFile] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    # Set when a proxied page was served from cache because the upstream failed.
    stale: bool = False
