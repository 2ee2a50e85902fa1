"""Errors as RFC 9457 problem documents (``application/problem+json``), and their handlers.

Every error the API answers has the same shape: ``type``, ``title``, ``status``,
``detail`` (and ``errors`` for invalid input, one entry per offending field). The handlers
installed by :func:`install_problem_handlers` turn every exception that can reach the
application's edge into such a document: validation errors and the core's input errors
into ``422`` naming the field, unknown tasks into ``404``, impossible transitions into
``409``, database outages into ``503`` with ``Retry-After``, and anything unexpected into a
``500`` whose body says nothing about the cause (the traceback goes to the server log).
"""

from __future__ import annotations

import http
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from prismq.api.auth import BEARER_SCHEME, AuthenticationError, AuthorizationError
from prismq.queue import (
    DatabaseError,
    DatabaseUnavailableError,
    InvalidStateTransitionError,
    InvalidTaskError,
    SchemaNotMigratedError,
    TaskNotFoundError,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_RESPONSES",
    "RETRY_AFTER_SECONDS",
    "FieldProblem",
    "Problem",
    "field_problems",
    "install_problem_handlers",
    "problem_document",
    "problem_response",
    "problem_responses",
]

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: What a ``503`` asks clients to wait before trying again.
RETRY_AFTER_SECONDS = 5


class FieldProblem(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="The field, e.g. `priority` or `tasks[2].type`.")
    loc: list[str | int] = Field(
        description="Where it is: `body`, `query` or `path`, then the field's path."
    )
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An error, as an RFC 9457 problem document."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="For invalid input (422): each offending field."
    )


def problem_document(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    **extra: Any,
) -> dict[str, Any]:
    """A problem document; ``title`` defaults to the status code's reason phrase."""
    if title is None:
        title = _reason(status)
    return {"type": type_, "title": title, "status": status, "detail": detail, **extra}


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A response carrying :func:`problem_document` as ``application/problem+json``."""
    return JSONResponse(
        problem_document(status, detail, title=title, type_=type_, **extra),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _field_name(loc: Sequence[str | int]) -> str:
    """``("body", "tasks", 2, "type")`` -> ``tasks[2].type``; the source alone names itself."""
    parts = list(loc[1:]) if len(loc) > 1 and loc[0] in {"body", "query", "path"} else list(loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    if name:
        return name
    return str(loc[0]) if loc else "request"


def _location(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def field_problems(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """The ``errors`` entries of a 422 from pydantic's error list (no input echoed)."""
    problems: list[dict[str, Any]] = []
    for error in errors:
        loc: list[str | int] = [
            part if isinstance(part, int) else str(part) for part in error.get("loc", ())
        ]
        if error.get("type") == "json_invalid":
            # FastAPI puts the character position where a field name would go.
            reason = (error.get("ctx") or {}).get("error", "")
            position = f" at character {loc[1]}" if len(loc) > 1 else ""
            problems.append(
                {"field": "body", "loc": ["body"], "message": f"invalid JSON{position}: {reason}"}
            )
            continue
        # The input is left out on purpose: it can be large, or hold a secret.
        message = str(error["msg"])
        # A validator's own ValueError reads better without pydantic's prefix.
        message = message.removeprefix("Value error, ")
        problems.append({"field": _field_name(loc), "loc": loc, "message": message})
    return problems


def _unprocessable(problems: list[dict[str, Any]]) -> JSONResponse:
    detail = "; ".join(f"{_location(p['loc'])}: {p['message']}" for p in problems)
    return problem_response(422, detail or "invalid request", errors=problems)


async def _request_validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return _unprocessable(field_problems(error.errors()))


async def _invalid_task(request: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidTaskError)
    return _unprocessable([{"field": error.field, "loc": [error.field], "message": error.message}])


async def _http_exception(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and isinstance(error.__cause__, (ValueError, RecursionError)):
        # FastAPI's answer to a body json.loads() cannot read (not UTF-8, nested too deep,
        # an integer too long): bad input like any malformed JSON, so a 422 naming the body.
        return _unprocessable(
            [{"field": "body", "loc": ["body"], "message": "the body is not readable JSON"}]
        )
    detail = error.detail if isinstance(error.detail, str) else _reason(error.status_code)
    headers = dict(error.headers) if error.headers else None
    if error.status_code in {204, 304} or error.status_code < 200:
        return Response(status_code=error.status_code, headers=headers)
    return problem_response(error.status_code, detail, headers=headers)


async def _task_not_found(request: Request, error: Exception) -> Response:
    assert isinstance(error, TaskNotFoundError)
    return problem_response(404, f"task {error.task_id} does not exist", title="Task not found")


async def _invalid_transition(request: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidStateTransitionError)
    return problem_response(
        409,
        f"task {error.task_id} is {error.status}: cannot {error.action} it",
        title="Task is not in a state that allows this",
    )


def _service_unavailable(detail: str) -> JSONResponse:
    return problem_response(
        503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, title="Service Unavailable"
    )


async def _schema_not_migrated(request: Request, error: Exception) -> Response:
    # The core's message names the database URL: it goes to the log, not to the client.
    logger.error("the queue database is not migrated: %s", error)
    return _service_unavailable(
        "the queue database is not migrated to the schema this service expects;"
        " an operator must run: prismq db upgrade"
    )


async def _database_unavailable(request: Request, error: Exception) -> Response:
    logger.error("%s %s: the database is unavailable: %s", request.method, request.url.path, error)
    return _service_unavailable("the queue database is unavailable; try again later")


async def _database_error(request: Request, error: Exception) -> Response:
    # Mostly transient (a lock timeout, a serialization failure): worth a retry.
    logger.error("%s %s: database error", request.method, request.url.path, exc_info=error)
    return _service_unavailable("the queue database could not complete the request; try again")


async def _authentication(request: Request, error: Exception) -> Response:
    assert isinstance(error, AuthenticationError)
    return problem_response(
        401, error.detail, headers={"WWW-Authenticate": BEARER_SCHEME}, title="Unauthorized"
    )


async def _authorization(request: Request, error: Exception) -> Response:
    assert isinstance(error, AuthorizationError)
    return problem_response(403, error.detail, title="Forbidden")


async def _unexpected(request: Request, error: Exception) -> Response:
    logger.error("%s %s: unexpected error", request.method, request.url.path, exc_info=error)
    return problem_response(500, "an unexpected error occurred; it has been logged")


_Handler = Callable[[Request, Exception], Awaitable[Response]]

#: Exception type -> handler; Starlette picks the handler of the closest base class.
_HANDLERS: dict[type[Exception], _Handler] = {
    RequestValidationError: _request_validation,
    StarletteHTTPException: _http_exception,
    InvalidTaskError: _invalid_task,
    TaskNotFoundError: _task_not_found,
    InvalidStateTransitionError: _invalid_transition,
    SchemaNotMigratedError: _schema_not_migrated,
    DatabaseUnavailableError: _database_unavailable,
    DatabaseError: _database_error,
    OperationalError: _database_unavailable,
    SQLAlchemyError: _database_error,
    AuthenticationError: _authentication,
    AuthorizationError: _authorization,
    Exception: _unexpected,
}


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with a problem document."""
    for exception_type, handler in _HANDLERS.items():
        app.add_exception_handler(exception_type, handler)


#: OpenAPI ``responses=`` entries, so each route documents its problem answers.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, malformed, unknown or revoked token."},
    403: {"model": Problem, "description": "The token lacks the scope this operation needs."},
    404: {"model": Problem, "description": "No task with this id."},
    409: {"model": Problem, "description": "The task's status does not allow this."},
    413: {"model": Problem, "description": "The request body is over the size limit."},
    422: {"model": Problem, "description": "Invalid input; `errors` names each field."},
    503: {"model": Problem, "description": "The queue database is unavailable or not migrated."},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses=`` entries of the given problem statuses."""
    return {status: PROBLEM_RESPONSES[status] for status in statuses}
