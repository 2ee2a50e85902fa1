"""The service's configuration, read from ``PRISMQ_*`` environment variables.

=================================  =========  ===================================================
variable                           default    meaning
=================================  =========  ===================================================
``PRISMQ_DATABASE_URL``            (unset)    the queue database; unset: the core's default, a
                                              per-user SQLite file
``PRISMQ_API_DB_POOL_SIZE``        10         connections kept open to the database
``PRISMQ_API_MAX_BODY_BYTES``      1048576    larger request bodies get 413
``PRISMQ_API_DEFAULT_LIST_LIMIT``  50         page size of ``GET /tasks`` without ``limit``
``PRISMQ_API_MAX_LIST_LIMIT``      500        largest ``limit`` accepted (more: 422)
``PRISMQ_API_MAX_WAIT_SECONDS``    60         longest ``timeout`` of ``GET /tasks/{id}/wait``
``PRISMQ_API_WAIT_POLL_SECONDS``   0.05       first pause between two checks of a waited task
``PRISMQ_API_WAIT_MAX_POLL_SECONDS`` 1.0      longest pause (the pause doubles up to it)
``PRISMQ_API_STALE_WORKER_SECONDS`` 60        a worker silent for longer is reported ``stale``
``PRISMQ_API_DOCS_ENABLED``        true       serve ``/docs``, ``/redoc`` and ``/openapi.json``
``PRISMQ_API_ROOT_PATH``           ""         path prefix a reverse proxy serves the API under
=================================  =========  ===================================================
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prismq.queue.queries import MAX_PAGE_SIZE

__all__ = ["ENV_PREFIX", "ApiSettings", "environment_variables"]

ENV_PREFIX = "PRISMQ_"


class ApiSettings(BaseSettings):
    """Settings of one API service; each field is read from ``PRISMQ_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="Queue database URL; unset: the core's default (a per-user SQLite file).",
    )
    api_db_pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections kept open to the database."
    )
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Request bodies over this many bytes get 413."
    )
    api_default_list_limit: int = Field(
        default=50, ge=1, le=MAX_PAGE_SIZE, description="Page size of a task list by default."
    )
    api_max_list_limit: int = Field(
        default=MAX_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description="Largest page size a client may ask for; more is a 422.",
    )
    api_max_wait_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Longest long-poll timeout a client may ask for."
    )
    api_wait_poll_seconds: float = Field(
        default=0.05, gt=0, le=60, description="First pause between two checks of a waited task."
    )
    api_wait_max_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Longest pause between two checks of a waited task."
    )
    api_stale_worker_seconds: float = Field(
        default=60.0, gt=0, description="A worker whose heartbeat is older is reported stale."
    )
    api_docs_enabled: bool = Field(
        default=True, description="Serve /docs, /redoc and /openapi.json."
    )
    api_root_path: str = Field(
        default="", description="Path prefix under which a reverse proxy serves the API."
    )

    @model_validator(mode="after")
    def _limits_are_consistent(self) -> ApiSettings:
        if self.api_default_list_limit > self.api_max_list_limit:
            raise ValueError("api_default_list_limit must not exceed api_max_list_limit")
        if self.api_wait_poll_seconds > self.api_wait_max_poll_seconds:
            raise ValueError("api_wait_poll_seconds must not exceed api_wait_max_poll_seconds")
        return self


def environment_variables() -> dict[str, str]:
    """``{ENVIRONMENT_VARIABLE: description}`` of every setting, for docs and ``--help``."""
    return {
        f"{ENV_PREFIX}{name.upper()}": field.description or ""
        for name, field in ApiSettings.model_fields.items()
    }
