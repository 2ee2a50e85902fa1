"""Bad input is a 422 naming the field; outages are 503; nothing leaks a traceback or SQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_support import PROBLEM_JSON, Api, api_settings
from fastapi.testclient import TestClient
from test_health_metrics import closed_port_url

from prismq.api import create_app
from prismq.queue import enqueue, list_tasks

ENQUEUE = "/api/queue/enqueue"
NUL = "\x00"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is a problem document of ``status`` with no internals in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert problem["status"] == status
    for leak in ("Traceback", "SELECT", "INSERT", "sqlalchemy", "psycopg", 'File "'):
        assert leak not in response.text
    return problem


def fields_named(response: Any) -> list[str]:
    problem = assert_problem(response, 422)
    return [error["field"] for error in problem["errors"]]


# -- the enqueue body, field by field -------------------------------------------------------

BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("type", {"type": ""}),
    ("type", {"type": " padded"}),
    ("type", {"type": "trailing newline\n"}),
    ("type", {"type": "x" * 201}),
    ("type", {"type": 5}),
    ("type", {"type": f"a{NUL}b"}),
    ("queue", {"queue": ""}),
    ("queue", {"queue": "q" * 101}),
    ("queue", {"queue": f"q{NUL}"}),
    ("priority", {"priority": 0}),
    ("priority", {"priority": 1001}),
    ("priority", {"priority": "5"}),
    ("priority", {"priority": True}),
    ("priority", {"priority": 1.5}),
    ("max_attempts", {"max_attempts": 0}),
    ("max_attempts", {"max_attempts": 101}),
    ("payload", {"payload": []}),
    ("payload", {"payload": "text"}),
    ("payload", {"payload": None}),
    ("payload", {"payload": {"k": f"v{NUL}"}}),
    ("payload", {"payload": {f"k{NUL}": 1}}),
    ("payload", {"payload": {"deep": json.loads("[" * 70 + "]" * 70)}}),
    ("compatibility", {"compatibility": {"gpu": {"model": "a100"}}}),
    ("compatibility", {"compatibility": ["gpu"]}),
    ("run_after_utc", {"run_after_utc": "2030-01-01T00:00:00"}),
    ("run_after_utc", {"run_after_utc": "next tuesday"}),
    ("run_after_utc", {"run_after_utc": "9999-12-31T23:00:00-14:00"}),
    ("delay_seconds", {"delay_seconds": -1}),
    ("delay_seconds", {"delay_seconds": 10**9}),
    ("delay_seconds", {"delay_seconds": 5, "run_after_utc": "2030-01-01T00:00:00Z"}),
    ("idempotency_key", {"idempotency_key": "k" * 201}),
    ("idempotency_key", {"idempotency_key": ""}),
    ("surprise", {"surprise": 1}),
]


@pytest.mark.parametrize(
    ("field", "body"), BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_FIELDS)]
)
def test_a_bad_field_is_named_and_nothing_is_enqueued(
    api: Api, field: str, body: dict[str, Any]
) -> None:
    response = api.client.post(ENQUEUE, json={"type": "t", **body}, headers=api.writer)

    assert field in fields_named(response)
    assert f"body.{field}" in response.json()["detail"]
    assert list_tasks(api.db).items == []


def test_a_missing_type_is_named(api: Api) -> None:
    response = api.client.post(ENQUEUE, json={"payload": {}}, headers=api.writer)

    assert fields_named(response) == ["type"]
    assert "Field required" in response.json()["detail"]


def test_a_payload_with_nan_is_refused_by_name(api: Api) -> None:
    # Python's JSON (and the server's) accept NaN, which no JSON column can hold.
    body = b'{"type": "t", "payload": {"x": NaN}}'
    response = api.client.post(
        ENQUEUE, content=body, headers={**api.writer, "content-type": "application/json"}
    )

    assert fields_named(response) == ["payload"]


def test_malformed_json_is_a_422(api: Api) -> None:
    response = api.client.post(
        ENQUEUE, content=b'{"type": ', headers={**api.writer, "content-type": "application/json"}
    )

    assert fields_named(response) == ["body"]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe not utf-8",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"type": "t", "priority": 1' + b"0" * 5000 + b"}",
    ],
    ids=["not-utf-8", "nested-too-deep", "integer-too-long"],
)
def test_an_unreadable_body_is_a_422_naming_the_body(api: Api, body: bytes) -> None:
    response = api.client.post(
        ENQUEUE, content=body, headers={**api.writer, "content-type": "application/json"}
    )

    assert fields_named(response) == ["body"]


def test_both_schedules_are_named_in_the_message(api: Api) -> None:
    body = {"type": "t", "delay_seconds": 5, "run_after_utc": "2030-01-01T00:00:00Z"}
    response = api.client.post(ENQUEUE, json=body, headers=api.writer)

    message = response.json()["errors"][0]["message"]
    assert "run_after_utc" in message
    assert "delay_seconds" in message


# -- paths and query strings ----------------------------------------------------------------

TASK_ROUTES = [
    ("GET", "/api/queue/tasks/{}"),
    ("GET", "/api/queue/tasks/{}/wait"),
    ("GET", "/api/queue/tasks/{}/logs"),
    ("POST", "/api/queue/tasks/{}/cancel"),
    ("POST", "/api/queue/tasks/{}/retry"),
]


@pytest.mark.parametrize(("method", "route"), TASK_ROUTES)
@pytest.mark.parametrize("task_id", ["abc", "-1", "0", "1.5", str(2**63), "9" * 40])
def test_a_bad_task_id_is_named(api: Api, method: str, route: str, task_id: str) -> None:
    response = api.client.request(method, route.format(task_id), headers=api.admin)

    assert fields_named(response) == ["task_id"]


@pytest.mark.parametrize(
    ("field", "params"),
    [
        ("limit", {"limit": "0"}),
        ("limit", {"limit": "501"}),
        ("limit", {"limit": "many"}),
        ("cursor", {"cursor": "abc"}),
        ("cursor", {"cursor": "-1"}),
        ("cursor", {"cursor": "9999999999999999999"}),
        ("cursor", {"cursor": "12\n"}),
        ("cursor", {"cursor": "\u0661"}),
        ("cursor", {"cursor": "9" * 30}),
        ("status", {"status": "running"}),
        ("type", {"type": ""}),
        ("queue", {"queue": "q" * 101}),
    ],
)
def test_a_bad_list_parameter_is_named(api: Api, field: str, params: dict[str, str]) -> None:
    response = api.client.get("/api/queue/tasks", params=params, headers=api.reader)

    assert field in fields_named(response)


@pytest.mark.parametrize("params", [{"type": f"t{NUL}"}, {"queue": NUL}])
def test_a_filter_no_task_can_match_finds_nothing(api: Api, params: dict[str, str]) -> None:
    enqueue(api.db, "t")

    response = api.client.get("/api/queue/tasks", params=params, headers=api.reader)

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("field", "params"),
    [("after_id", {"after_id": "-1"}), ("limit", {"limit": "0"}), ("limit", {"limit": "1001"})],
)
def test_a_bad_logs_parameter_is_named(api: Api, field: str, params: dict[str, str]) -> None:
    task_id = enqueue(api.db, "t").task_id

    response = api.client.get(f"/api/queue/tasks/{task_id}/logs", params=params, headers=api.reader)

    assert fields_named(response) == [field]


# -- not found, not allowed ---------------------------------------------------------------


def test_an_unknown_route_is_a_problem_404(api: Api) -> None:
    assert_problem(api.client.get("/api/queue/nothing-here", headers=api.reader), 404)


def test_a_wrong_method_is_a_problem_405(api: Api) -> None:
    assert_problem(api.client.delete("/api/queue/enqueue", headers=api.writer), 405)


def test_no_token_is_a_problem_401_with_a_challenge(api: Api) -> None:
    response = api.client.get("/api/queue/stats")

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_missing_scope_is_a_problem_403(api: Api) -> None:
    response = api.client.post(ENQUEUE, json={"type": "t"}, headers=api.reader)

    assert "tasks:write" in assert_problem(response, 403)["detail"]


# -- the database gone -------------------------------------------------------------------


def test_an_unreachable_database_is_503_with_retry_after() -> None:
    with TestClient(create_app(api_settings(closed_port_url()))) as client:
        response = client.get("/api/queue/tasks/1", headers={"Authorization": "Bearer pq_whatever"})

    problem = assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert "secret-password" not in response.text
    assert "127.0.0.1" not in problem["detail"]


def test_an_unopenable_sqlite_file_is_503(tmp_path: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    (tmp_path / "prismq.db").mkdir()
    with TestClient(create_app(api_settings(f"sqlite:///{tmp_path / 'prismq.db'}"))) as client:
        response = client.post(
            ENQUEUE, json={"type": "t"}, headers={"Authorization": "Bearer pq_whatever"}
        )

    assert_problem(response, 503)


def test_an_unmigrated_database_is_503_naming_the_command(empty_url: str) -> None:
    with TestClient(create_app(api_settings(empty_url))) as client:
        response = client.get("/api/queue/stats", headers={"Authorization": "Bearer pq_x"})

    assert "prismq db upgrade" in assert_problem(response, 503)["detail"]


# -- the unexpected --------------------------------------------------------------------------


def test_an_unexpected_error_is_a_bare_500(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(api_settings(database_url))

    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError("internal secret detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode")

    problem = assert_problem(response, 500)
    assert "internal secret detail" not in response.text
    assert problem["detail"] == "an unexpected error occurred; it has been logged"
    assert "internal secret detail" in caplog.text
