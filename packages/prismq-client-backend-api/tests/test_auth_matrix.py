"""Authentication and scopes of every route: the cases are generated from ``app.routes``.

For each route that needs a token: no header, three malformed headers, an unknown token
and a revoked token get 401 (with ``WWW-Authenticate: Bearer``); each token whose scopes
fall short gets 403; the right scope, and ``admin``, get neither. The open routes (health
probes, API docs) answer without a token. A route added to the application is picked up
here automatically, and :func:`test_every_route_is_classified` fails until it is entered
in :data:`REQUIRED_SCOPE` or :data:`OPEN_ROUTES`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from api_support import PROBLEM_JSON, Api
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from prismq.api import ApiSettings, create_app
from prismq.api.auth import Scope
from prismq.api.tokens import create_token, revoke_token
from prismq.queue import enqueue

#: (method, path template) -> the scope the route needs.
REQUIRED_SCOPE: dict[tuple[str, str], Scope] = {
    ("POST", "/api/queue/enqueue"): Scope.TASKS_WRITE,
    ("POST", "/api/queue/enqueue/batch"): Scope.TASKS_WRITE,
    ("GET", "/api/queue/tasks"): Scope.TASKS_READ,
    ("GET", "/api/queue/tasks/{task_id}"): Scope.TASKS_READ,
    ("GET", "/api/queue/tasks/{task_id}/wait"): Scope.TASKS_READ,
    ("GET", "/api/queue/tasks/{task_id}/logs"): Scope.TASKS_READ,
    ("POST", "/api/queue/tasks/{task_id}/cancel"): Scope.TASKS_WRITE,
    ("POST", "/api/queue/tasks/{task_id}/retry"): Scope.TASKS_WRITE,
    ("GET", "/api/queue/stats"): Scope.TASKS_READ,
    ("GET", "/api/queue/workers"): Scope.TASKS_READ,
    ("GET", "/metrics"): Scope.TASKS_READ,
}

#: Routes that answer without a token, exactly these.
OPEN_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("GET", "/openapi.json"),
    }
)

#: A valid request body for the routes that take one (used in every case, so that only
#: the credentials differ between the cases of a route).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/queue/enqueue"): {"type": "matrix", "payload": {"n": 1}},
    ("POST", "/api/queue/enqueue/batch"): {"tasks": [{"type": "matrix"}, {"type": "matrix"}]},
}
#: Query strings a route needs to answer promptly.
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/api/queue/tasks/{task_id}/wait"): {"timeout": "0.01"},
}

UNKNOWN_TOKEN = "pq_" + "U" * 43
MALFORMED_HEADERS = {
    "bearer-alone": "Bearer",
    "basic": "Basic dXNlcjpwYXNz",
    "bearer-two-words": "Bearer a b",
}


def _routes_of(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of ``app``, HEAD left out.

    ``app.routes`` holds each included router as one entry; FastAPI's own route iterator
    (what its OpenAPI generator walks) expands them into the routes they serve.
    """
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(app.routes):
        assert route.path is not None, f"a route without a path: {route!r}"
        found += [
            (method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"
        ]
    return found


APP_ROUTES = _routes_of(create_app(ApiSettings()))


@dataclass(frozen=True)
class Case:
    """One request of the matrix and the answer it must get."""

    method: str
    path: str
    credentials: str  # which kind of Authorization header
    scopes: tuple[Scope, ...] = ()
    expected: str = "401"  # "401", "403" or "allowed"

    @property
    def id(self) -> str:
        scopes = "+".join(scope.value for scope in self.scopes)
        return f"{self.method} {self.path} {self.credentials}{f'[{scopes}]' if scopes else ''}"


def _wrong_scope_sets(required: Scope) -> list[tuple[Scope, ...]]:
    """Every non-empty set of scopes that does not allow ``required``."""
    others = [scope for scope in Scope if scope not in (required, Scope.ADMIN)]
    return [
        combination
        for size in range(1, len(others) + 1)
        for combination in itertools.combinations(others, size)
    ]


def _cases_of(method: str, path: str) -> list[Case]:
    if (method, path) in OPEN_ROUTES:
        return [
            Case(method, path, "none", expected="allowed"),
            Case(method, path, "unknown", expected="allowed"),
        ]
    # A route not yet classified still gets every 401 case (test_every_route_is_classified
    # fails for it meanwhile): a route cannot be open by omission.
    cases = [Case(method, path, kind) for kind in ("none", *MALFORMED_HEADERS, "unknown")]
    required = REQUIRED_SCOPE.get((method, path))
    if required is None:
        return cases
    cases.append(Case(method, path, "revoked", (required,)))
    cases += [Case(method, path, "token", s, "403") for s in _wrong_scope_sets(required)]
    cases.append(Case(method, path, "token", (required,), "allowed"))
    if required is not Scope.ADMIN:
        cases.append(Case(method, path, "token", (Scope.ADMIN,), "allowed"))
    return cases


CASES = [case for method, path in APP_ROUTES for case in _cases_of(method, path)]


def test_every_route_is_classified() -> None:
    routes = set(APP_ROUTES)
    assert routes - OPEN_ROUTES == set(REQUIRED_SCOPE)
    assert routes & OPEN_ROUTES == OPEN_ROUTES
    assert len(routes) == len(APP_ROUTES)  # no (method, path) served twice


def test_the_size_of_the_matrix() -> None:
    authed = [route for route in APP_ROUTES if route not in OPEN_ROUTES]
    # Per route with a token: 6 x 401 (none, 3 malformed, unknown, revoked), one 403 per
    # insufficient set of scopes, and the right scope (plus admin when that is not it).
    expected = sum(
        6
        + len(_wrong_scope_sets(REQUIRED_SCOPE[r]))
        + (2 if REQUIRED_SCOPE[r] != Scope.ADMIN else 1)
        for r in authed
    ) + 2 * len(OPEN_ROUTES)
    print(
        f"\nauth matrix: {len(APP_ROUTES)} routes ({len(authed)} with a token,"
        f" {len(OPEN_ROUTES)} open), {len(CASES)} cases"
    )
    assert len(CASES) == expected


def _authorization(api: Api, case: Case) -> str | None:
    if case.credentials == "none":
        return None
    if case.credentials in MALFORMED_HEADERS:
        return MALFORMED_HEADERS[case.credentials]
    if case.credentials == "unknown":
        return f"Bearer {UNKNOWN_TOKEN}"
    info, token = create_token(api.db, f"matrix-{case.credentials}", case.scopes)
    if case.credentials == "revoked":
        revoke_token(api.db, info.id)
    return f"Bearer {token}"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_auth_matrix(api: Api, case: Case) -> None:
    task_id = enqueue(api.db, "matrix", {}).task_id
    authorization = _authorization(api, case)
    headers = {"Authorization": authorization} if authorization is not None else {}
    route = (case.method, case.path)

    response = api.client.request(
        case.method,
        case.path.replace("{task_id}", str(task_id)),
        headers=headers,
        json=BODIES.get(route),
        params=QUERIES.get(route),
    )

    if case.expected == "401":
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["status"] == 401
        assert UNKNOWN_TOKEN not in response.text
    elif case.expected == "403":
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        required = REQUIRED_SCOPE[route].value
        assert response.json()["detail"] == f"this token lacks the {required!r} scope"
    else:
        assert response.status_code not in {401, 403}, response.text
        assert response.status_code < 500, response.text


def test_the_docs_routes_are_served_only_when_enabled() -> None:
    # With the docs off the open set shrinks to the probes: nothing else becomes open.
    routes = set(_routes_of(create_app(ApiSettings(api_docs_enabled=False))))
    assert routes & OPEN_ROUTES == {("GET", "/healthz"), ("GET", "/readyz")}
    assert routes - OPEN_ROUTES == set(REQUIRED_SCOPE)
