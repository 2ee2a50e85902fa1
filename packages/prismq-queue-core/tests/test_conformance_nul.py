"""Conformance: the NUL character is refused in names and JSON on both backends alike.

PostgreSQL's ``text`` and ``jsonb`` cannot store NUL, so without these checks the same call
would succeed on SQLite and fail with a database error on PostgreSQL. Free text that must be
kept (error messages, log lines) is stored with NUL replaced by U+FFFD instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from prismq.queue import (
    InvalidPayloadError,
    InvalidTaskError,
    QueueDatabase,
    TaskStatus,
    claim_tasks,
    complete,
    enqueue,
    fail,
    get_task,
    get_task_logs,
    list_tasks,
    log,
)

NUL = "\x00"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("type", {"task_type": f"a{NUL}b"}),
        ("queue", {"queue": f"q{NUL}"}),
        ("idempotency_key", {"idempotency_key": f"k{NUL}1"}),
    ],
)
def test_nul_in_a_name_is_refused(db: QueueDatabase, field: str, kwargs: dict[str, Any]) -> None:
    task_type = kwargs.pop("task_type", "t")
    with pytest.raises(InvalidTaskError) as raised:
        enqueue(db, task_type, **kwargs)
    assert raised.value.field == field
    assert list_tasks(db).items == []


@pytest.mark.parametrize(
    "payload",
    [
        {"text": f"a{NUL}b"},
        {f"key{NUL}": 1},
        {"deep": [{"list": ["ok", f"{NUL}"]}]},
    ],
)
def test_nul_anywhere_in_a_payload_is_refused(db: QueueDatabase, payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        enqueue(db, "t", payload)
    assert raised.value.field == "payload"


def test_an_escaped_nul_spelled_out_is_ordinary_text(db: QueueDatabase) -> None:
    # The six characters \u0000 are not NUL; only the real character is refused.
    task = enqueue(db, "t", {"text": "\\u0000"}).task
    assert get_task(db, task.id).payload == {"text": "\\u0000"}


def test_nul_in_a_claim_filter_is_refused(db: QueueDatabase) -> None:
    with pytest.raises(InvalidTaskError) as raised:
        claim_tasks(db, "w", task_types=[f"t{NUL}"])
    assert raised.value.field == "task_types"


def test_nul_in_a_result_is_refused_and_the_lease_kept(db: QueueDatabase) -> None:
    enqueue(db, "t")
    (claimed,) = claim_tasks(db, "w")
    with pytest.raises(InvalidPayloadError):
        complete(db, claimed.id, claimed.lease_token, {"out": NUL})
    assert get_task(db, claimed.id).status is TaskStatus.LEASED
    assert complete(db, claimed.id, claimed.lease_token, {"out": "ok"}) is TaskStatus.COMPLETED


def test_nul_in_free_text_is_stored_as_a_replacement_character(db: QueueDatabase) -> None:
    enqueue(db, "t", max_attempts=1)
    (claimed,) = claim_tasks(db, "w")
    log(db, claimed.id, f"line{NUL}one")
    assert fail(db, claimed.id, claimed.lease_token, f"boom{NUL}") is TaskStatus.FAILED
    assert get_task(db, claimed.id).error_message == "boom\ufffd"
    assert [entry.message for entry in get_task_logs(db, claimed.id)] == ["line\ufffdone"]
