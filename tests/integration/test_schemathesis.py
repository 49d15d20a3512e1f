"""A bounded schemathesis run over the OpenAPI document: no 5xx, ever.

``orchard serve`` runs on the stack under test (offline: it contacts no
upstream). Every operation of ``/api/v1/openapi.json`` is called with cases
that schemathesis generates from the document, valid ones and, where an
operation has a query, header or body, invalid ones, first with a reader's
token (a member of one private project) and then with an administrator's.
Any answer of 500 or above fails the test, and so does a traceback in the
server's log. The run is deterministic (derandomized) and bounded: a few
examples per operation and mode, and a time budget per credential.

Administrators may do anything, including revoking the token in use: a
credential that stops working is replaced before the next operation.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from orchard.settings import Settings
from tests.conftest import LiveServer, insert_token

EXAMPLES = 20  # per operation and generation mode
BUDGET = 60.0  # seconds per credential, at most
# Operations that would reach out of the server (offline anyway, and never in tests).
SKIPPED = {"POST /api/v1/upstreams/{name}/test"}


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    return stack_settings.model_copy(update={"offline": True})


def seed(server: LiveServer) -> None:
    """Something to find: a public and a private project with a file each, and
    a reader who is a member of the private one."""
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as http:
        for name, public in (("open", True), ("closed", False)):
            r = http.post("/api/v1/projects", json={"name": name, "is_public": public})
            assert r.status_code == 201, r.text
            r = http.put(
                f"/api/v1/project/{name}/packages/pkg/versions/1.0/files/f.bin",
                content=f"bytes of {name}".encode(),
            )
            assert r.status_code == 201, r.text
        r = http.post(
            "/api/v1/users", json={"username": "reader", "password": "reader-password-123"}
        )
        assert r.status_code == 201, r.text
        r = http.put("/api/v1/project/closed/members/reader", json={"role": "read"})
        assert r.status_code in (200, 201), r.text


class Credential:
    """A bearer token that is replaced when it stops working."""

    def __init__(self, settings: Settings, username: str, scope: str) -> None:
        self.settings, self.username, self.scope = settings, username, scope
        self.token = insert_token(settings, username, scope)

    def headers(self, server: LiveServer) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"}
        if httpx.get(f"{server.url}/api/v1/auth/me", headers=auth, timeout=10).status_code == 401:
            self.token = insert_token(self.settings, self.username, self.scope)
            auth = {"Authorization": f"Bearer {self.token}"}
        return auth


def has_inputs_beyond_the_path(operation: Any) -> bool:
    """Invalid cases exist only for queries, headers and bodies (a path
    parameter is any string)."""
    definition = operation.definition.raw
    locations = {p.get("in") for p in definition.get("parameters", [])}
    return bool(locations - {"path"}) or "requestBody" in definition


def fuzz(server: LiveServer, credential: Credential) -> tuple[list[str], collections.Counter[str]]:
    """Run every operation; returns the 5xx found and a tally of outcomes."""
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    failures: list[str] = []
    tally: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + BUDGET
    session = requests.Session()

    def send(case: Any, auth: dict[str, str]) -> None:
        try:
            response = case.call(base_url=server.url, session=session, headers=auth, timeout=30)
        except requests.exceptions.InvalidHeader:
            tally["refused by the client library"] += 1
            return
        tally[f"{response.status_code // 100}xx"] += 1
        if response.status_code >= 500:
            failures.append(
                f"{response.status_code} {case.method} {str(response.request.url)[:500]} "
                f"headers={case.headers} body={str(case.body)[:300]!r}: {response.text[:300]}"
            )

    def examples(strategy: Any, auth: dict[str, str]) -> Callable[[], None]:
        @given(case=strategy)
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def call(case: Any) -> None:
            send(case, auth)

        return call  # type: ignore[no-any-return]

    with session:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.label in SKIPPED:
                continue
            if time.monotonic() > deadline:
                tally["operations left out (time budget)"] += 1
                continue
            auth = credential.headers(server)
            modes = [GenerationMode.POSITIVE]
            if has_inputs_beyond_the_path(operation):
                modes.append(GenerationMode.NEGATIVE)
            # Boundary values first (empty, huge, wrong types), as schemathesis's
            # coverage phase makes them; then random examples of each mode.
            coverage = schema.config.generation_for(operation=operation, phase="coverage")
            for case in schema.iter_coverage_cases(
                operation, generation_modes=modes, generation_config=coverage
            ):
                send(case, auth)
            for mode in modes:
                call = examples(operation.as_strategy(generation_mode=mode), auth)
                try:
                    call()
                except Unsatisfiable:
                    tally["unsatisfiable"] += 1
    return failures, tally


@pytest.fixture
def seeded(live_server: LiveServer) -> Iterator[LiveServer]:
    seed(live_server)
    yield live_server


def test_no_server_errors_for_a_reader_or_an_administrator(
    seeded: LiveServer, settings: Settings
) -> None:
    started = time.monotonic()
    report = {}
    failures: list[str] = []
    # The reader first: the administrator's run deletes what the reader could see.
    for name, credential in (
        ("reader", Credential(settings, "reader", "read")),
        ("admin", Credential(settings, "admin", "write")),
    ):
        found, tally = fuzz(seeded, credential)
        failures += [f"[{name}] {line}" for line in found]
        report[name] = dict(tally)
    assert httpx.get(f"{seeded.url}/health", timeout=10).status_code == 200
    log = seeded.log.read_text(errors="replace")
    elapsed = time.monotonic() - started
    assert not failures, "\n".join(failures[:30]) + f"\n{report}"
    assert "Traceback" not in log, log[-4000:]
    assert report["reader"].get("2xx") and report["admin"].get("2xx"), report
    print(f"schemathesis: {report} in {elapsed:.1f} s")
