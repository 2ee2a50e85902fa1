"""Property-based tests generated from the OpenAPI document by schemathesis.

Every operation gets valid and invalid requests (schemathesis' examples, coverage and
fuzzing phases), sent with an ``admin`` token to the real application on this test's
database, seeded with tasks in every status so that ids can exist. All of schemathesis'
checks run on every response: no server error, status code, content type, headers and
body conforming to the document, invalid input rejected, valid input accepted, and
authentication not ignored. Generation is derandomized, so a run is reproducible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from api_support import api_settings
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from prismq.api import ApiSettings, create_app
from prismq.api.auth import Scope
from prismq.api.tokens import create_token
from prismq.queue import (
    QueueDatabase,
    claim_tasks,
    complete,
    enqueue,
    fail,
    log,
    register_worker,
    request_cancel,
)

#: Hypothesis examples per operation, to which schemathesis adds its example and coverage
#: cases: over the 13 operations, thousands of requests.
MAX_EXAMPLES = 250


def _settings(database_url: str) -> ApiSettings:
    # A short longest wait: a generated long-poll must not hold the run for a minute.
    return api_settings(database_url, api_max_wait_seconds=0.2)


# The document does not depend on the database, so it is read once, from an application
# that is never started; the requests go to an application built with the same settings
# on each test's own database (`served_app`, which checks the two documents are equal).
# test_openapi.py checks that the served /openapi.json is this same document.
SCHEMA_APP = create_app(_settings("sqlite:///never-opened.db"))
schema = schemathesis.openapi.from_dict(SCHEMA_APP.openapi())


@dataclass
class CurrentToken:
    """The admin token of the running test (each test has its own database, so its own)."""

    value: str = ""


CURRENT_TOKEN = CurrentToken()


@schema.auth(refresh_interval=None, retry_on=[])
class AdminToken:
    """Authenticates generated requests, so that schemathesis knows which ones it meant to
    send without credentials (those it leaves alone, and expects a 401 for)."""

    def get(self, case: Any, context: Any) -> str:
        return CURRENT_TOKEN.value

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def seed(db: QueueDatabase) -> None:
    """Tasks in every status (ids 1-6), log lines and a worker, so lookups can succeed."""
    ids = [enqueue(db, "seeded", {"n": n}, priority=10 * (n + 1)).task_id for n in range(6)]
    register_worker(db, "seed-worker", hostname="seed-host", pid=1, queues=["default"])
    leased = claim_tasks(db, "seed-worker", n=3, task_types=["seeded"])
    complete(db, leased[0].id, leased[0].lease_token, {"ok": True})
    fail(db, leased[1].id, leased[1].lease_token, "boom", retryable=False)
    log(db, leased[2].id, "working", details={"step": 1})  # stays leased
    request_cancel(db, ids[-1])  # three stay queued, one of them now cancelled


@pytest.fixture(scope="module")
def case_counts(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    """Requests sent per operation; the totals are printed when the module is done."""
    counts: Counter[str] = Counter()
    yield counts
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not counts:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for operation, count in sorted(counts.items()):
            reporter.write_line(f"schemathesis: {count:6d} cases  {operation}")
        reporter.write_line(
            f"schemathesis: {sum(counts.values()):6d} cases in total over {len(counts)} operations"
        )


@pytest.fixture
def served_app(db: QueueDatabase, database_url: str) -> FastAPI:
    """The application under test: same settings as the schema's, on this test's database."""
    seed(db)
    app = create_app(_settings(database_url), database=db)
    assert app.openapi() == SCHEMA_APP.openapi()
    return app


@pytest.fixture
def admin_token(db: QueueDatabase) -> Iterator[None]:
    _, CURRENT_TOKEN.value = create_token(db, "schemathesis", [Scope.ADMIN])
    yield
    CURRENT_TOKEN.value = ""


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    # The application and its database are per test, shared by the test's examples on
    # purpose: what one request enqueues, the next may read.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(
    case: Any,
    served_app: FastAPI,
    admin_token: None,
    case_counts: Counter[str],
) -> None:
    case_counts[case.operation.label] += 1
    # Every request of this case goes to this test's application: the case itself and the
    # probes some checks send (e.g. the same request without credentials).
    case.operation.app = served_app
    case.operation.schema.app = served_app
    case.call_and_validate()
