"""``POST /api/queue/enqueue`` and ``/enqueue/batch``: what is stored, idempotency, batches."""

from __future__ import annotations

import datetime as dt

from api_support import PROBLEM_JSON, Api

from prismq.queue import TaskStatus, get_task, list_tasks

ENQUEUE = "/api/queue/enqueue"
BATCH = "/api/queue/enqueue/batch"


def test_enqueue_stores_every_field_given(api: Api) -> None:
    body = {
        "type": "send_email",
        "queue": "mail",
        "priority": 7,
        "payload": {"to": "a@example.com", "tags": [1, 2.5, None, True], "nested": {"k": "v"}},
        "compatibility": {"gpu": True, "region": "eu"},
        "max_attempts": 3,
        "idempotency_key": "order-17",
    }
    response = api.client.post(ENQUEUE, json=body, headers=api.writer)

    assert response.status_code == 201
    answer = response.json()
    assert set(answer) == {"task_id", "status", "created_at_utc", "message"}
    assert answer["status"] == "queued"
    task = get_task(api.db, answer["task_id"])
    assert (task.type, task.queue, task.priority, task.max_attempts) == ("send_email", "mail", 7, 3)
    assert task.payload == body["payload"]
    assert task.compatibility == body["compatibility"]
    assert task.idempotency_key == "order-17"
    assert dt.datetime.fromisoformat(answer["created_at_utc"]) == task.created_at_utc


def test_enqueue_applies_the_core_defaults(api: Api) -> None:
    response = api.client.post(ENQUEUE, json={"type": "t"}, headers=api.writer)

    task = get_task(api.db, response.json()["task_id"])
    assert (task.queue, task.priority, task.max_attempts) == ("default", 100, 5)
    assert (task.payload, task.compatibility, task.idempotency_key) == ({}, {}, None)
    assert task.run_after_utc == task.created_at_utc


def test_a_known_idempotency_key_returns_the_existing_task_with_200(api: Api) -> None:
    headers = api.writer
    first = api.client.post(
        ENQUEUE, json={"type": "t", "idempotency_key": "k", "payload": {"n": 1}}, headers=headers
    )
    again = api.client.post(
        ENQUEUE, json={"type": "t", "idempotency_key": "k", "payload": {"n": 2}}, headers=headers
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.json()["created_at_utc"] == first.json()["created_at_utc"]
    assert "already exists" in again.json()["message"]
    assert len(list_tasks(api.db).items) == 1
    assert get_task(api.db, first.json()["task_id"]).payload == {"n": 1}


def test_delay_seconds_counts_from_the_database_clock(api: Api) -> None:
    response = api.client.post(ENQUEUE, json={"type": "t", "delay_seconds": 90}, headers=api.writer)

    task = get_task(api.db, response.json()["task_id"])
    assert task.run_after_utc - task.created_at_utc == dt.timedelta(seconds=90)


def test_run_after_utc_with_any_offset_is_stored_as_that_instant(api: Api) -> None:
    response = api.client.post(
        ENQUEUE,
        json={"type": "t", "run_after_utc": "2031-05-06T09:30:00+02:00"},
        headers=api.writer,
    )

    task = get_task(api.db, response.json()["task_id"])
    assert task.run_after_utc == dt.datetime(2031, 5, 6, 7, 30, tzinfo=dt.timezone.utc)


def test_a_batch_is_enqueued_in_order(api: Api) -> None:
    tasks = [{"type": f"t{i}", "payload": {"i": i}} for i in range(5)]
    response = api.client.post(BATCH, json={"tasks": tasks}, headers=api.writer)

    assert response.status_code == 201
    task_ids = response.json()["task_ids"]
    assert len(task_ids) == 5
    assert [get_task(api.db, task_id).payload for task_id in task_ids] == [
        {"i": i} for i in range(5)
    ]


def test_a_batch_with_a_known_key_returns_the_existing_task_id(api: Api) -> None:
    headers = api.writer
    existing = api.client.post(ENQUEUE, json={"type": "t", "idempotency_key": "k"}, headers=headers)
    response = api.client.post(
        BATCH,
        json={"tasks": [{"type": "t"}, {"type": "t", "idempotency_key": "k"}]},
        headers=headers,
    )

    assert response.status_code == 201
    assert response.json()["task_ids"][1] == existing.json()["task_id"]
    assert len(list_tasks(api.db).items) == 2


def test_a_batch_with_one_bad_task_enqueues_nothing_and_names_it(api: Api) -> None:
    tasks = [{"type": "ok"}, {"type": "ok"}, {"type": "bad", "priority": 0}]
    response = api.client.post(BATCH, json={"tasks": tasks}, headers=api.writer)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [error["field"] for error in response.json()["errors"]] == ["tasks[2].priority"]
    assert list_tasks(api.db).items == []


def test_a_batch_of_1000_is_accepted_and_1001_refused(api: Api) -> None:
    headers = api.writer
    too_many = api.client.post(BATCH, json={"tasks": [{"type": "t"}] * 1001}, headers=headers)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "tasks"
    assert list_tasks(api.db).items == []

    most = api.client.post(BATCH, json={"tasks": [{"type": "t"}] * 1000}, headers=headers)
    assert most.status_code == 201
    assert len(set(most.json()["task_ids"])) == 1000


def test_an_empty_batch_is_refused(api: Api) -> None:
    response = api.client.post(BATCH, json={"tasks": []}, headers=api.writer)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "tasks"


def test_enqueued_tasks_are_queued(api: Api) -> None:
    response = api.client.post(BATCH, json={"tasks": [{"type": "t"}]}, headers=api.writer)

    assert get_task(api.db, response.json()["task_ids"][0]).status is TaskStatus.QUEUED
