"""``/api/queue``: enqueue tasks, read them, wait for them, cancel and retry them.

The router is built per application (:func:`build_tasks_router`) because some bounds come
from the settings (the largest page, the longest wait) and belong in the OpenAPI schema.
Every endpoint but ``wait`` is a plain ``def``: FastAPI runs it in its thread pool, where
the core's blocking database calls belong.
"""

# No ``from __future__ import annotations`` here: the parameter annotations refer to
# bounds local to build_tasks_router, which FastAPI must evaluate when the routes are made.
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator

from prismq.api.dependencies import DatabaseDep, ReadPrincipal, WritePrincipal
from prismq.api.field_types import MAX_TASK_ID, check_storable_text
from prismq.api.problems import problem_responses
from prismq.api.schemas import (
    BatchEnqueueRequest,
    BatchEnqueueResponse,
    CancelResponse,
    EnqueueRequest,
    EnqueueResponse,
    TaskLogOut,
    TaskLogPageOut,
    TaskOut,
    TaskPageOut,
)
from prismq.api.settings import ApiSettings
from prismq.api.wait import TaskWaiters, wait_while_connected
from prismq.queue import (
    TaskStatus,
    enqueue,
    enqueue_many,
    get_task,
    get_task_logs,
    list_tasks,
    request_cancel,
    retry_failed,
)
from prismq.queue.tables import MAX_QUEUE_LENGTH, MAX_TYPE_LENGTH
from prismq.queue.task_logs import MAX_LOGS_PER_READ

__all__ = ["build_tasks_router"]

#: Default ``timeout`` of a wait, when the settings allow that long.
DEFAULT_WAIT_SECONDS = 30.0

TaskIdPath = Annotated[int, Path(ge=1, le=MAX_TASK_ID, description="The task's id.", examples=[42])]


#: A cursor is a task id; 18 digits keep it below the largest id whatever the digits.
MAX_CURSOR_DIGITS = 18
CURSOR_PATTERN = rf"^[0-9]{{1,{MAX_CURSOR_DIGITS}}}$(?!\n)"


def _cursor_digits(value: str | None) -> str | None:
    # Checked here rather than by Query(pattern=...): the server's regex engine and the
    # OpenAPI tools' would read "$" differently (a final newline).
    if value is not None and not (value.isascii() and value.isdigit()):
        raise ValueError("should be a cursor returned by a previous page (digits only)")
    return value


def _storable(name: str | None) -> bool:
    if name is None:
        return True
    try:
        check_storable_text(name)
    except ValueError:
        return False
    return True


def build_tasks_router(settings: ApiSettings) -> APIRouter:
    """The task routes, with the bounds of ``settings``."""
    router = APIRouter(prefix="/api/queue", tags=["tasks"])
    max_list_limit = settings.api_max_list_limit
    max_wait = settings.api_max_wait_seconds

    @router.post(
        "/enqueue",
        status_code=201,
        response_model=EnqueueResponse,
        summary="Enqueue a task",
        response_description="The task was created.",
        responses={
            200: {
                "model": EnqueueResponse,
                "description": "A task with this idempotency key already existed: that task.",
            },
            **problem_responses(401, 403, 413, 422, 503),
        },
    )
    def enqueue_task(
        body: EnqueueRequest,
        response: Response,
        database: DatabaseDep,
        _principal: WritePrincipal,
    ) -> EnqueueResponse:
        """Put one task on the queue (201); with a known `idempotency_key`, return that
        task instead (200)."""
        result = enqueue(
            database,
            body.type,
            body.payload,
            queue=body.queue,
            priority=body.priority,
            compatibility=body.compatibility,
            max_attempts=body.max_attempts,
            run_after_utc=body.run_after_utc,
            delay_seconds=body.delay_seconds,
            idempotency_key=body.idempotency_key,
        )
        if result.created:
            message = "task enqueued"
        else:
            response.status_code = 200
            message = "a task with this idempotency key already exists; it is returned unchanged"
        return EnqueueResponse(
            task_id=result.task.id,
            status=result.task.status,
            created_at_utc=result.task.created_at_utc,
            message=message,
        )

    @router.post(
        "/enqueue/batch",
        status_code=201,
        response_model=BatchEnqueueResponse,
        summary="Enqueue many tasks at once, all or nothing",
        responses=problem_responses(401, 403, 413, 422, 503),
    )
    def enqueue_batch(
        body: BatchEnqueueRequest, database: DatabaseDep, _principal: WritePrincipal
    ) -> BatchEnqueueResponse:
        """Put up to 1000 tasks on the queue in one transaction; ids in the order given.
        A task whose idempotency key is known contributes the existing task's id."""
        task_ids = enqueue_many(database, [task.to_new_task() for task in body.tasks])
        return BatchEnqueueResponse(task_ids=task_ids)

    @router.get(
        "/tasks",
        response_model=TaskPageOut,
        summary="List tasks, newest first",
        responses=problem_responses(401, 403, 422, 503),
    )
    def list_tasks_page(
        *,
        database: DatabaseDep,
        _principal: ReadPrincipal,
        status: Annotated[TaskStatus | None, Query(description="Only this status.")] = None,
        task_type: Annotated[
            str | None,
            Query(
                alias="type",
                min_length=1,
                max_length=MAX_TYPE_LENGTH,
                description="Only this type.",
            ),
        ] = None,
        queue: Annotated[
            str | None,
            Query(min_length=1, max_length=MAX_QUEUE_LENGTH, description="Only this queue."),
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=max_list_limit, description="Tasks per page.")
        ] = settings.api_default_list_limit,
        cursor: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=MAX_CURSOR_DIGITS,
                description="The `next_cursor` of the previous page.",
                json_schema_extra={"pattern": CURSOR_PATTERN},
            ),
            AfterValidator(_cursor_digits),
        ] = None,
    ) -> TaskPageOut:
        """One page of tasks matching the filters; keyset-paginated, so pages stay stable
        while tasks are added."""
        if not _storable(task_type) or not _storable(queue):
            # No stored task has such a name (enqueue refuses them): nothing to look up.
            return TaskPageOut(items=[], next_cursor=None)
        page = list_tasks(
            database,
            status=status,
            task_type=task_type,
            queue=queue,
            limit=limit,
            cursor=cursor,
        )
        return TaskPageOut(
            items=[TaskOut.from_record(task) for task in page.items], next_cursor=page.next_cursor
        )

    @router.get(
        "/tasks/{task_id}",
        response_model=TaskOut,
        summary="Get a task",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    def get_one_task(
        task_id: TaskIdPath, database: DatabaseDep, _principal: ReadPrincipal
    ) -> TaskOut:
        """Every field of the task but its lease token."""
        return TaskOut.from_record(get_task(database, task_id))

    @router.get(
        "/tasks/{task_id}/wait",
        response_model=TaskOut,
        summary="Wait for a task to finish",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def wait_for_task(
        request: Request,
        task_id: TaskIdPath,
        _principal: ReadPrincipal,
        timeout: Annotated[
            float,
            Query(
                gt=0,
                le=max_wait,
                allow_inf_nan=False,
                description="Longest wait, in seconds.",
            ),
        ] = min(DEFAULT_WAIT_SECONDS, max_wait),
    ) -> TaskOut | Response:
        """Long-poll: answers as soon as the task is completed, failed or cancelled, or
        after `timeout` seconds with the task as it is then (200 either way: read `status`)."""
        waiters: TaskWaiters = request.app.state.task_waiters
        task = await wait_while_connected(request, waiters, task_id, timeout)
        if task is None:
            return Response(status_code=204)  # the client has gone: nobody reads this
        return TaskOut.from_record(task)

    @router.get(
        "/tasks/{task_id}/logs",
        response_model=TaskLogPageOut,
        summary="Read a task's log lines",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    def read_task_logs(
        task_id: TaskIdPath,
        database: DatabaseDep,
        _principal: ReadPrincipal,
        after_id: Annotated[
            int,
            Query(ge=0, le=MAX_TASK_ID, description="Only lines after this one (`next_after_id`)."),
        ] = 0,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LOGS_PER_READ, description="Lines per page.")
        ] = MAX_LOGS_PER_READ,
    ) -> TaskLogPageOut:
        """The lines the task's handler logged, oldest first."""
        lines = get_task_logs(database, task_id, after_id=after_id, limit=limit)
        return TaskLogPageOut(
            task_id=task_id,
            items=[TaskLogOut.from_record(line) for line in lines],
            next_after_id=lines[-1].id if len(lines) == limit else None,
        )

    @router.post(
        "/tasks/{task_id}/cancel",
        response_model=CancelResponse,
        summary="Cancel a task",
        responses=problem_responses(401, 403, 404, 409, 422, 503),
    )
    def cancel_task(
        task_id: TaskIdPath, database: DatabaseDep, _principal: WritePrincipal
    ) -> CancelResponse:
        """A queued task is cancelled at once (`cancelled`); a running one is asked to stop
        (`cancel_requested`); a finished one cannot be cancelled (409)."""
        if request_cancel(database, task_id) is TaskStatus.CANCELLED:
            return CancelResponse(
                task_id=task_id, status="cancelled", message="the task was cancelled"
            )
        return CancelResponse(
            task_id=task_id,
            status="cancel_requested",
            message="the task is running; its worker will be told to stop",
        )

    @router.post(
        "/tasks/{task_id}/retry",
        response_model=TaskOut,
        summary="Retry a failed or cancelled task",
        responses=problem_responses(401, 403, 404, 409, 422, 503),
    )
    def retry_task(
        task_id: TaskIdPath, database: DatabaseDep, _principal: WritePrincipal
    ) -> TaskOut:
        """Queue a `failed` or `cancelled` task again, ready now, its attempts reset; any
        other status is a 409."""
        return TaskOut.from_record(retry_failed(database, task_id))

    return router
