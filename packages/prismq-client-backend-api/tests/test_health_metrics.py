"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import re
import socket

import pytest
from api_support import PROBLEM_JSON, Api, api_settings, enqueue_via_api
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from prismq.api import create_app
from prismq.api.metrics import QueueCollector
from prismq.queue import QueueDatabase, claim_tasks, complete, enqueue, fail, register_worker
from prismq.queue.migrate import head_revision


def closed_port_url() -> str:
    """A PostgreSQL URL on a local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://prismq:secret-password@127.0.0.1:{port}/prismq?connect_timeout=2"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(name, sorted labels): value}`` of a Prometheus exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# -- health -------------------------------------------------------------------------------


def test_healthz_needs_no_token_and_no_database() -> None:
    with TestClient(create_app(api_settings(closed_port_url()))) as client:
        response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_200_on_a_migrated_database(api: Api) -> None:
    response = api.client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schema_revision": head_revision()}


def test_readyz_is_503_naming_the_command_on_an_unmigrated_database(empty_url: str) -> None:
    with TestClient(create_app(api_settings(empty_url))) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "prismq db upgrade" in response.json()["detail"]
    assert "Retry-After" in response.headers


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    with TestClient(create_app(api_settings(closed_port_url()))) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert "unavailable" in response.json()["detail"]
    assert "secret-password" not in response.text


# -- metrics ------------------------------------------------------------------------------


def test_metrics_need_a_reading_token(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=api.writer).status_code == 403
    assert api.client.get("/metrics", headers=api.admin).status_code == 200


def test_metrics_report_the_queue_from_the_database(api: Api) -> None:
    for task_type in ["a", "a", "b", "c"]:
        enqueue(api.db, task_type, queue="q1" if task_type == "a" else "q2")
    [done] = claim_tasks(api.db, "w", task_types=["b"])
    complete(api.db, done.id, done.lease_token)
    [dead] = claim_tasks(api.db, "w", task_types=["c"])
    fail(api.db, dead.id, dead.lease_token, "boom", retryable=False)
    register_worker(api.db, "w1")

    response = api.client.get("/metrics", headers=api.reader)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert values[("prismq_database_up", ())] == 1
    assert values[("prismq_tasks", (("status", "queued"),))] == 2
    assert values[("prismq_tasks", (("status", "completed"),))] == 1
    assert values[("prismq_tasks", (("status", "failed"),))] == 1
    assert values[("prismq_tasks_by_type", (("status", "queued"), ("type", "a")))] == 2
    assert values[("prismq_tasks_by_queue", (("queue", "q2"), ("status", "failed")))] == 1
    assert values[("prismq_recently_finished_tasks", (("status", "completed"),))] == 1
    assert values[("prismq_recently_finished_tasks", (("status", "failed"),))] == 1
    assert values[("prismq_oldest_queued_age_seconds", ())] >= 0
    assert values[("prismq_workers", (("state", "active"),))] == 1
    assert values[("prismq_api_waiting_requests", ())] == 0


def test_request_durations_are_labelled_by_route_template(api: Api) -> None:
    headers = api.admin
    task_id = enqueue_via_api(api, headers)
    api.client.get(f"/api/queue/tasks/{task_id}", headers=headers)
    api.client.get("/api/queue/tasks/999", headers=headers)
    api.client.get("/no/such/path", headers=headers)

    text = api.client.get("/metrics", headers=headers).text

    counts = {
        labels: value
        for (name, labels), value in samples(text).items()
        if name == "prismq_api_request_duration_seconds_count"
    }
    route = "/api/queue/tasks/{task_id}"
    assert counts[(("method", "GET"), ("route", route), ("status", "200"))] == 1
    assert counts[(("method", "GET"), ("route", route), ("status", "404"))] == 1
    assert counts[(("method", "POST"), ("route", "/api/queue/enqueue"), ("status", "201"))] == 1
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert not re.search(r'route="/api/queue/tasks/\d', text)


def test_two_applications_in_one_process_keep_their_own_metrics(
    api: Api, database_url: str
) -> None:
    other = create_app(api_settings(database_url), database=api.db)
    headers = api.reader
    with TestClient(other) as other_client:
        other_client.get("/healthz")
        other_text = other_client.get("/metrics", headers=headers).text
    api_text = api.client.get("/metrics", headers=headers).text

    healthz = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    assert samples(other_text)[("prismq_api_request_duration_seconds_count", healthz)] == 1
    assert ("prismq_api_request_duration_seconds_count", healthz) not in samples(api_text)


def test_the_collector_reports_the_database_down_instead_of_failing() -> None:
    database = QueueDatabase(closed_port_url())
    try:
        families = list(QueueCollector(lambda: database, stale_after_seconds=60).collect())
    finally:
        database.close()

    assert [family.name for family in families] == ["prismq_database_up"]
    assert families[0].samples[0].value == 0


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_docs_can_be_turned_off(api: Api, database_url: str, path: str) -> None:
    assert api.client.get(path).status_code == 200
    quiet = create_app(api_settings(database_url, api_docs_enabled=False), database=api.db)
    with TestClient(quiet) as client:
        assert client.get(path).status_code == 404
