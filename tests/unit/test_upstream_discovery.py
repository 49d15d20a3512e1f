"""Default upstreams come from the client tools' own configuration."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchard.upstream import discovery
from orchard.upstream.discovery import first_goproxy, go_proxy, npm_registry, pip_index_url


def runner(outputs: dict[str, str | None]) -> discovery.Runner:
    def run(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
        key = " ".join(a for a in argv if a != sys.executable)
        return outputs.get(key)

    return run


def no_builtin() -> str | None:
    return None


def test_pip_index_url_from_the_environment_wins() -> None:
    env = {"PIP_INDEX_URL": "http://mirror.test/simple"}
    run = runner({"-m pip config list": "global.index-url='http://other.test/simple'\n"})
    assert pip_index_url(env, run, no_builtin) == "http://mirror.test/simple"


def test_pip_index_url_from_pip_config_list() -> None:
    out = "global.index-url='http://global.test/simple'\ninstall.index-url='http://inst.test/s'\n"
    run = runner({"-m pip config list": out})
    assert pip_index_url({}, run, no_builtin) == "http://inst.test/s"
    run = runner({"-m pip config list": "global.timeout='5'\n"})
    assert pip_index_url({}, run, lambda: "http://builtin.test/simple") == (
        "http://builtin.test/simple"
    )


HELP = """
Package Index Options:
  -i, --index-url <url>       Base URL of the Python Package Index (default
                              https://index.test/simple). This should point to a
                              repository compliant with PEP 503.
  --extra-index-url <url>     Extra URLs of package indexes (default
                              https://other.test/simple).
"""


def test_pip_builtin_default_is_read_from_pips_help() -> None:
    run = runner({"-m pip install --help": HELP})
    assert discovery.pip_builtin_index({}, run) == "https://index.test/simple"
    assert discovery.pip_builtin_index({}, runner({})) is None
    assert discovery.pip_builtin_index({}, runner({"-m pip install --help": "usage"})) is None


def test_pip_builtin_default_comes_from_real_pip() -> None:
    url = pip_index_url({}, runner({}))
    assert url is not None and url.startswith("https://") and url.endswith("/simple")


def test_pip_config_file_is_read_by_real_pip(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = http://127.0.0.1:3141/root/simple\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = str(config)
    assert pip_index_url(env) == "http://127.0.0.1:3141/root/simple"


def test_npm_registry() -> None:
    assert npm_registry({"npm_config_registry": "http://npm.test/"}, runner({})) == (
        "http://npm.test/"
    )
    run = runner({"npm config get registry": "http://reg.test/\n"})
    assert npm_registry({}, run) == "http://reg.test/"
    assert npm_registry({}, runner({})) is None
    assert npm_registry({}, runner({"npm config get registry": "undefined\n"})) is None


def test_go_proxy_takes_the_first_real_entry() -> None:
    assert first_goproxy("direct") is None
    assert first_goproxy("off") is None
    assert first_goproxy("direct,http://a.test|http://b.test") == "http://a.test"
    assert first_goproxy("http://a.test|http://b.test,direct") == "http://a.test"
    assert go_proxy({"GOPROXY": "http://env.test,direct"}, runner({})) == "http://env.test"
    run = runner({"go env GOPROXY": "http://cfg.test,direct\n"})
    assert go_proxy({}, run) == "http://cfg.test"
    assert go_proxy({}, runner({})) is None
