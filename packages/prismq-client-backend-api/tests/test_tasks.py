"""Reading, listing, waiting for, cancelling and retrying tasks over HTTP."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest
from api_support import PROBLEM_JSON, Api, api_settings, enqueue_via_api, poll_until
from fastapi.testclient import TestClient

from prismq.api import create_app
from prismq.queue import (
    TaskStatus,
    claim_tasks,
    complete,
    enqueue,
    fail,
    get_task,
    log,
    set_progress,
)

TASKS = "/api/queue/tasks"


def _task_url(task_id: int, action: str = "") -> str:
    return f"{TASKS}/{task_id}" + (f"/{action}" if action else "")


# -- one task -------------------------------------------------------------------------------


def test_get_returns_every_field_but_the_lease_token(api: Api) -> None:
    task_id = enqueue(api.db, "t", {"n": 1}, idempotency_key="key").task_id
    [claimed] = claim_tasks(api.db, "worker-1", task_types=["t"])
    set_progress(api.db, task_id, claimed.lease_token, {"done": 0.5})

    response = api.client.get(_task_url(task_id), headers=api.reader)

    assert response.status_code == 200
    task = response.json()
    record = get_task(api.db, task_id)
    assert set(task) == {
        "id", "queue", "type", "priority", "payload", "compatibility", "status", "attempts",
        "max_attempts", "run_after_utc", "lease_until_utc", "locked_by", "reserved_at_utc",
        "processing_started_utc", "finished_at_utc", "error_message", "result", "progress",
        "cancel_requested", "idempotency_key", "created_at_utc", "updated_at_utc",
    }  # fmt: skip
    assert claimed.lease_token not in response.text
    assert (task["id"], task["status"], task["locked_by"]) == (task_id, "leased", "worker-1")
    assert (task["progress"], task["idempotency_key"], task["attempts"]) == (
        {"done": 0.5},
        "key",
        1,
    )
    assert dt.datetime.fromisoformat(task["lease_until_utc"]) == record.lease_until_utc


def test_a_completed_task_shows_its_result(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id
    [claimed] = claim_tasks(api.db, "w", task_types=["t"])
    complete(api.db, task_id, claimed.lease_token, {"answer": 42})

    task = api.client.get(_task_url(task_id), headers=api.reader).json()

    assert (task["status"], task["result"]) == ("completed", {"answer": 42})
    assert task["finished_at_utc"] is not None


def test_an_unknown_task_is_404(api: Api) -> None:
    response = api.client.get(_task_url(123), headers=api.reader)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"] == "task 123 does not exist"


# -- listing ------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages_through_every_task_once(api: Api) -> None:
    ids = [enqueue(api.db, "t", {"i": i}).task_id for i in range(7)]
    headers = api.reader

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.client.get(TASKS, params=params, headers=headers).json()
        seen += [task["id"] for task in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == sorted(ids, reverse=True)
    assert pages == 3


def test_list_filters_by_status_type_and_queue(api: Api) -> None:
    a = enqueue(api.db, "alpha", queue="q1").task_id
    b = enqueue(api.db, "beta", queue="q1").task_id
    c = enqueue(api.db, "alpha", queue="q2").task_id
    claim_tasks(api.db, "w", task_types=["beta"])
    headers = api.reader

    def ids(**params: str) -> list[int]:
        response = api.client.get(TASKS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [task["id"] for task in response.json()["items"]]

    assert ids(type="alpha") == [c, a]
    assert ids(queue="q1") == [b, a]
    assert ids(status="leased") == [b]
    assert ids(status="queued", queue="q2", type="alpha") == [c]
    assert ids(status="failed") == []


def test_list_uses_the_configured_default_page_size(api: Api, database_url: str) -> None:
    for _ in range(4):
        enqueue(api.db, "t")
    app = create_app(api_settings(database_url, api_default_list_limit=3), database=api.db)
    with TestClient(app) as client:
        page = client.get(TASKS, headers=api.reader).json()

    assert len(page["items"]) == 3
    assert page["next_cursor"] is not None


def test_list_refuses_a_limit_over_the_configured_maximum(api: Api, database_url: str) -> None:
    app = create_app(
        api_settings(database_url, api_max_list_limit=10, api_default_list_limit=5),
        database=api.db,
    )
    with TestClient(app) as client:
        response = client.get(TASKS, params={"limit": 11}, headers=api.reader)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"


# -- logs ---------------------------------------------------------------------------------


def test_logs_are_returned_oldest_first_and_paged(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id
    for i in range(3):
        log(api.db, task_id, f"line {i}", level="warning" if i == 1 else "info", details={"i": i})
    headers = api.reader

    first = api.client.get(_task_url(task_id, "logs"), params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert [line["message"] for line in page["items"]] == ["line 0", "line 1"]
    assert page["items"][1]["level"] == "warning"
    assert page["items"][0]["details"] == {"i": 0}
    assert page["task_id"] == task_id

    rest = api.client.get(
        _task_url(task_id, "logs"),
        params={"limit": 2, "after_id": page["next_after_id"]},
        headers=headers,
    ).json()
    assert [line["message"] for line in rest["items"]] == ["line 2"]
    assert rest["next_after_id"] is None


def test_logs_of_an_unknown_task_are_404(api: Api) -> None:
    assert api.client.get(_task_url(9, "logs"), headers=api.reader).status_code == 404


# -- cancel and retry ---------------------------------------------------------------------


def test_cancelling_a_queued_task_cancels_it_at_once(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id

    response = api.client.post(_task_url(task_id, "cancel"), headers=api.writer)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["task_id"] == task_id
    assert get_task(api.db, task_id).status is TaskStatus.CANCELLED


def test_cancelling_a_running_task_requests_it(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id
    claim_tasks(api.db, "w", task_types=["t"])

    response = api.client.post(_task_url(task_id, "cancel"), headers=api.writer)

    assert response.status_code == 200
    assert response.json()["status"] == "cancel_requested"
    task = get_task(api.db, task_id)
    assert (task.status, task.cancel_requested) == (TaskStatus.LEASED, True)


def test_cancelling_a_finished_task_is_409(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id
    [claimed] = claim_tasks(api.db, "w", task_types=["t"])
    complete(api.db, task_id, claimed.lease_token)

    response = api.client.post(_task_url(task_id, "cancel"), headers=api.writer)

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "completed" in response.json()["detail"]


def test_cancelling_an_unknown_task_is_404(api: Api) -> None:
    assert api.client.post(_task_url(5, "cancel"), headers=api.writer).status_code == 404


@pytest.mark.parametrize("final", ["failed", "cancelled"])
def test_retry_queues_a_failed_or_cancelled_task_again(api: Api, final: str) -> None:
    task_id = enqueue(api.db, "t", max_attempts=1).task_id
    [claimed] = claim_tasks(api.db, "w", task_types=["t"])
    if final == "failed":
        fail(api.db, task_id, claimed.lease_token, "boom", retryable=False)
    else:
        api.client.post(_task_url(task_id, "cancel"), headers=api.writer)
        complete(api.db, task_id, claimed.lease_token)
    assert get_task(api.db, task_id).status.value == final

    response = api.client.post(_task_url(task_id, "retry"), headers=api.writer)

    assert response.status_code == 200
    task = response.json()
    assert (task["id"], task["status"], task["attempts"]) == (task_id, "queued", 0)


def test_retrying_a_queued_task_is_409(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id

    response = api.client.post(_task_url(task_id, "retry"), headers=api.writer)

    assert response.status_code == 409
    assert "queued" in response.json()["detail"]


def test_retrying_an_unknown_task_is_404(api: Api) -> None:
    assert api.client.post(_task_url(77, "retry"), headers=api.writer).status_code == 404


# -- wait ---------------------------------------------------------------------------------


def test_wait_returns_a_finished_task_at_once(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id
    api.client.post(_task_url(task_id, "cancel"), headers=api.writer)

    # The long timeout is never reached: the test would hang (and time out) if it were.
    response = api.client.get(
        _task_url(task_id, "wait"), params={"timeout": 60}, headers=api.reader
    )

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_wait_times_out_with_the_task_as_it_is(api: Api) -> None:
    task_id = enqueue(api.db, "t").task_id

    response = api.client.get(
        _task_url(task_id, "wait"), params={"timeout": 0.2}, headers=api.reader
    )

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (task_id, "queued")
    assert api.app.state.task_waiters.waiting == 0


def test_wait_returns_when_the_task_completes(api: Api) -> None:
    task_id = enqueue_via_api(api, api.writer)
    headers = api.reader

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(
            api.client.get, _task_url(task_id, "wait"), params={"timeout": 60}, headers=headers
        )
        poll_until(lambda: api.app.state.task_waiters.waiting == 1, what="the request to wait")
        assert not waiting.done()
        [claimed] = claim_tasks(api.db, "w", task_types=["t"])
        complete(api.db, task_id, claimed.lease_token, {"ok": True})
        response = waiting.result(timeout=30)

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["result"]) == ("completed", {"ok": True})


def test_wait_for_an_unknown_task_is_404(api: Api) -> None:
    response = api.client.get(_task_url(31, "wait"), params={"timeout": 5}, headers=api.reader)

    assert response.status_code == 404
    assert api.app.state.task_waiters.waiting == 0


@pytest.mark.parametrize("timeout", ["0", "-1", "60.5", "nan", "inf", "soon"])
def test_wait_refuses_a_timeout_out_of_bounds(api: Api, timeout: str) -> None:
    task_id = enqueue(api.db, "t").task_id

    response = api.client.get(
        _task_url(task_id, "wait"), params={"timeout": timeout}, headers=api.reader
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "timeout"
