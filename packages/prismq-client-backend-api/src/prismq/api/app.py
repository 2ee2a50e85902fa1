"""The application factory: ``create_app(settings)`` builds one PrismQ API service.

``prismq-api serve`` runs :func:`create_app_from_env` under uvicorn; tests and embedding
applications call :func:`create_app` with their own settings, and may hand it an open
:class:`~prismq.queue.QueueDatabase` (which the application then uses but does not close).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from prismq.api.__about__ import __version__
from prismq.api.body_limit import BodySizeLimitMiddleware
from prismq.api.field_types import JSON_VALUE_SCHEMA, JSON_VALUE_SCHEMA_NAME
from prismq.api.metrics import RequestMetricsMiddleware, create_registry
from prismq.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from prismq.api.routers import (
    build_tasks_router,
    health_router,
    metrics_router,
    stats_router,
    workers_router,
)
from prismq.api.settings import ApiSettings
from prismq.api.wait import TaskWaiters
from prismq.queue import DatabaseError, QueueDatabase, SchemaNotMigratedError, migrate

__all__ = ["create_app", "create_app_from_env"]

logger = logging.getLogger(__name__)

DESCRIPTION = """\
The REST API of PrismQ, a SQL-backed task queue: enqueue tasks, read them, wait for them
to finish, cancel and retry them, and watch the queue and its workers.

Every route but `/healthz` and `/readyz` needs `Authorization: Bearer <token>` with the
scope it names (`tasks:read`, `tasks:write` or `admin`, which allows everything). Errors
are `application/problem+json` documents (`type`, `title`, `status`, `detail`; invalid
input also lists each offending field under `errors`).
"""

OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "tasks", "description": "Enqueue, read, wait for, cancel and retry tasks."},
    {"name": "stats", "description": "Task counts and backlog age."},
    {"name": "workers", "description": "Registered workers and their heartbeats."},
    {"name": "health", "description": "Liveness and readiness probes (no token needed)."},
    {"name": "operations", "description": "Prometheus metrics."},
]


def create_app(
    settings: ApiSettings | None = None, *, database: QueueDatabase | None = None
) -> FastAPI:
    """A PrismQ API application.

    Without ``database``, the application opens the database of ``settings`` when it
    starts and closes it when it stops.
    """
    settings = settings if settings is not None else ApiSettings()
    docs = settings.api_docs_enabled
    app = FastAPI(
        title="PrismQ API",
        summary="Enqueue, inspect and manage the tasks of a PrismQ queue.",
        description=DESCRIPTION,
        version=__version__,
        openapi_tags=OPENAPI_TAGS,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=_lifespan(settings, database),
        # Operation ids are the endpoint functions' names (unique): readable in clients.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    if database is not None:
        _attach_database(app, settings, database)

    registry, request_durations = create_registry(
        lambda: _state_database(app),
        stale_after_seconds=settings.api_stale_worker_seconds,
        waiting_requests=lambda: _waiting_requests(app),
    )
    app.state.metrics_registry = registry

    install_problem_handlers(app)
    app.include_router(build_tasks_router(settings))
    app.include_router(stats_router)
    app.include_router(workers_router)
    app.include_router(health_router)
    app.include_router(metrics_router)

    # Added innermost first: the metrics see every answer, 413s included.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, histogram=request_durations)
    if settings.api_root_path:
        app.add_middleware(RootPathMiddleware, root_path=settings.api_root_path)
    _complete_openapi(app)
    return app


def create_app_from_env() -> FastAPI:
    """The application configured by ``PRISMQ_*`` environment variables (what uvicorn runs)."""
    return create_app(ApiSettings())


def _lifespan(
    settings: ApiSettings, injected: QueueDatabase | None
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = injected
        if database is None:
            database = QueueDatabase(settings.database_url, pool_size=settings.api_db_pool_size)
            _attach_database(app, settings, database)
        logger.info("PrismQ API %s serving %s", __version__, database.display_url)
        await run_in_threadpool(_report_schema_state, database)
        try:
            yield
        finally:
            await _state_waiters(app).close()
            if injected is None:
                database.close()

    return lifespan


def _attach_database(app: FastAPI, settings: ApiSettings, database: QueueDatabase) -> None:
    app.state.database = database
    app.state.task_waiters = TaskWaiters(
        database,
        first_pause_seconds=settings.api_wait_poll_seconds,
        max_pause_seconds=settings.api_wait_max_poll_seconds,
    )


def _state_database(app: FastAPI) -> QueueDatabase:
    database: QueueDatabase = app.state.database
    return database


def _state_waiters(app: FastAPI) -> TaskWaiters:
    waiters: TaskWaiters = app.state.task_waiters
    return waiters


def _waiting_requests(app: FastAPI) -> float:
    waiters: TaskWaiters | None = getattr(app.state, "task_waiters", None)
    return float(waiters.waiting) if waiters is not None else 0.0


def _report_schema_state(database: QueueDatabase) -> None:
    """Log, at start-up, why the service would not be ready; serve anyway (see /readyz)."""
    try:
        migrate.check(database)
    except SchemaNotMigratedError as error:
        logger.error("the queue database is not ready: %s", error)
    except DatabaseError as error:
        logger.warning("the queue database does not answer yet: %s", error)


class RootPathMiddleware:
    """Sets the ASGI ``root_path`` (the prefix a reverse proxy serves the API under).

    A ``--root-path`` given to the server takes precedence.
    """

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = "/" + root_path.strip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"} and not scope.get("root_path"):
            scope = {**scope, "root_path": self.root_path}
        await self.app(scope, receive, send)


def _complete_openapi(app: FastAPI) -> None:
    """Finish the generated OpenAPI document, once, when it is first asked for.

    Error responses are documented as ``application/problem+json``, the type they are sent
    as (FastAPI documents every response model under ``application/json``); and the
    ``JsonValue`` component that payload schemas refer to is added.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        first_time = app.openapi_schema is None
        schema = generate()
        if first_time:
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components[JSON_VALUE_SCHEMA_NAME] = JSON_VALUE_SCHEMA
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if str(status)[0] in "45" and "application/json" in content:
                            content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
