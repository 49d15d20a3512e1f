"""HTTP endpoints of the npm registry protocol under ``/npm/{project}/``:
a shell for now (``protocols/shell.py``), answering in npm's error form."""

from __future__ import annotations

from orchard.protocols.npm.errors import render_error
from orchard.protocols.npm.service import SERVICE
from orchard.protocols.shell import shell_router

router = shell_router("npm", SERVICE, render_error, "application/json")
