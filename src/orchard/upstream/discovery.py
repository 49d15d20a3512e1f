"""Where each format's own tools fetch from, when settings do not say.

Orchard never hard-codes a public registry: the default upstream of each
format is what its client is configured to use on this machine, and, for
pip, pip's own built-in default (as ``pip install --help`` states it, not
written here).
Each helper takes the environment and a command runner so that tests can
feed them fake configuration.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("orchard.upstream")

Runner = Callable[[Sequence[str], Mapping[str, str]], str | None]
COMMAND_TIMEOUT = 10.0


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """stdout of ``argv``, or None when it cannot run or fails."""
    if shutil.which(argv[0]) is None and not os.path.isabs(argv[0]):
        return None
    try:
        done = subprocess.run(
            list(argv),
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("cannot run %s: %s", argv[0], exc)
        return None
    return done.stdout if done.returncode == 0 else None


def _clean(url: str | None) -> str | None:
    url = (url or "").strip().strip("'\"")
    if not url.startswith(("http://", "https://")):
        return None
    return url


def _pip_config_value(output: str) -> str | None:
    """``index-url`` from ``pip config list`` output (``global.index-url='…'``);
    the install section wins over global, as in pip."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        section, _, option = key.strip().rpartition(".")
        if option.replace("_", "-") == "index-url":
            found[section] = value
    for section in ("install", "download", "global"):
        if section in found:
            return _clean(found[section])
    return None


def _help_default(output: str) -> str | None:
    """The default of ``--index-url`` as ``pip install --help`` states it
    (``(default <url>)``, wrapped over lines as the terminal width has it)."""
    text = " ".join(output.split())
    option = re.search(r"--index-url <url> (.*?)(?: -\S|$)", text)
    if option is None:
        return None
    default = re.search(r"\(default (\S+?)\)", option.group(1))
    return _clean(default.group(1)) if default else None


def pip_builtin_index(
    env: Mapping[str, str] | None = None, run: Runner | None = None
) -> str | None:
    """pip's own default index, as pip's help for ``install`` states it (the
    supported way: pip offers no API, and its internals are not one)."""
    env = os.environ if env is None else env
    output = (run or run_command)([sys.executable, "-m", "pip", "install", "--help"], env)
    return _help_default(output or "")


def pip_index_url(
    env: Mapping[str, str] | None = None,
    run: Runner = run_command,
    builtin: Callable[[], str | None] = pip_builtin_index,
) -> str | None:
    """PIP_INDEX_URL, else pip's configured index-url, else pip's built-in default."""
    env = os.environ if env is None else env
    from_env = _clean(env.get("PIP_INDEX_URL"))
    if from_env:
        return from_env
    output = run([sys.executable, "-m", "pip", "config", "list"], env)
    configured = _pip_config_value(output or "")
    if configured:
        return configured
    return builtin()


def npm_registry(env: Mapping[str, str] | None = None, run: Runner = run_command) -> str | None:
    """npm_config_registry, else ``npm config get registry``."""
    env = os.environ if env is None else env
    for key in ("npm_config_registry", "NPM_CONFIG_REGISTRY"):
        if _clean(env.get(key)):
            return _clean(env.get(key))
    output = run(["npm", "config", "get", "registry"], env)
    return _clean((output or "").strip().splitlines()[0] if (output or "").strip() else None)


def first_goproxy(value: str) -> str | None:
    """The first real proxy of a GOPROXY list (``direct`` and ``off`` skipped)."""
    for entry in value.replace("|", ",").split(","):
        entry = entry.strip()
        if entry and entry not in ("direct", "off"):
            return _clean(entry)
    return None


def go_proxy(env: Mapping[str, str] | None = None, run: Runner = run_command) -> str | None:
    """GOPROXY from the environment, else ``go env GOPROXY``."""
    env = os.environ if env is None else env
    value = env.get("GOPROXY")
    if value is None:
        value = (run(["go", "env", "GOPROXY"], env) or "").strip()
    return first_goproxy(value)


DISCOVERERS: dict[str, Callable[[], str | None]] = {
    "pypi": pip_index_url,
    "npm": npm_registry,
    "go": go_proxy,
}
