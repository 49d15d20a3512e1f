"""HTTP endpoints of the Go module proxy protocol under ``/go/{project}/``:
a shell for now (``protocols/shell.py``), answering in Go's error form."""

from __future__ import annotations

from orchard.protocols.goproxy.errors import render_error
from orchard.protocols.goproxy.service import SERVICE
from orchard.protocols.shell import shell_router

router = shell_router("go", SERVICE, render_error, "text/plain; charset=utf-8")
