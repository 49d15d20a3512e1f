"""The one table of formats: the app mounts each one's router and
registers its lifespan hooks from here (``app.create_app``), nothing else.

Adding a format is one folder under ``protocols/`` (its service, router,
error form, names) and one line below.
"""

from __future__ import annotations

from orchard.core import names as core_names
from orchard.core.names import NameRules
from orchard.protocols.base import Format, UpstreamRules
from orchard.protocols.goproxy import errors as go_errors
from orchard.protocols.goproxy.router import router as go_router
from orchard.protocols.npm import errors as npm_errors
from orchard.protocols.npm.router import router as npm_router
from orchard.protocols.pypi import errors as pypi_errors
from orchard.protocols.pypi.router import router as pypi_router
from orchard.upstream.digests import GoModuleHash, HexDigests, Integrity


def name_rules(fmt: str) -> NameRules:
    """The package-name rules of format ``fmt`` (the one place that says
    where they live)."""
    return core_names.format_rules()[fmt]


FORMATS: tuple[Format, ...] = (
    Format(
        "pypi", pypi_router, name_rules, pypi_errors.render_error, UpstreamRules("pypi", HexDigests)
    ),
    Format("npm", npm_router, name_rules, npm_errors.render_error, UpstreamRules("npm", Integrity)),
    Format("go", go_router, name_rules, go_errors.render_error, UpstreamRules("go", GoModuleHash)),
)
