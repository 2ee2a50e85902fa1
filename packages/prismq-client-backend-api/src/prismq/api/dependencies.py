"""Dependencies of the routes, as ``Annotated`` aliases so signatures read like the domain.

``DatabaseDep`` and ``SettingsDep`` hand out what the application factory stored on
``app.state``; ``ReadPrincipal``, ``WritePrincipal`` and ``AdminPrincipal`` authenticate the
bearer token and check its scope (401 / 403 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from prismq.api.auth import AuthorizationError, Principal, Scope, authenticate
from prismq.api.settings import ApiSettings
from prismq.queue import QueueDatabase

__all__ = [
    "AdminPrincipal",
    "DatabaseDep",
    "ReadPrincipal",
    "SettingsDep",
    "WritePrincipal",
    "get_database",
    "get_settings",
    "require",
]


def get_database(request: Request) -> QueueDatabase:
    """The application's queue database."""
    database: QueueDatabase = request.app.state.database
    return database


def get_settings(request: Request) -> ApiSettings:
    """The application's settings."""
    settings: ApiSettings = request.app.state.settings
    return settings


DatabaseDep = Annotated[QueueDatabase, Depends(get_database)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]

# Declared so that OpenAPI shows the bearer scheme; the header itself is checked by
# authenticate(), which gives one consistent 401 for every kind of bad credential.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="An API token: `prismq-api tokens create NAME --scope SCOPE`.",
)


def require(scope: Scope) -> Callable[..., Principal]:
    """A dependency that authenticates the request and demands ``scope`` of its token."""

    def authorized_principal(
        request: Request,
        database: DatabaseDep,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    ) -> Principal:
        principal = authenticate(database, request.headers.get("authorization"))
        if not principal.allows(scope):
            raise AuthorizationError(f"this token lacks the {scope.value!r} scope")
        return principal

    authorized_principal.__name__ = f"require_{scope.name.lower()}"
    return authorized_principal


ReadPrincipal = Annotated[Principal, Depends(require(Scope.TASKS_READ))]
WritePrincipal = Annotated[Principal, Depends(require(Scope.TASKS_WRITE))]
AdminPrincipal = Annotated[Principal, Depends(require(Scope.ADMIN))]
