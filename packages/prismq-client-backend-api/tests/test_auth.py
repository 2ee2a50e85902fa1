"""``authenticate``: every shape of ``Authorization`` header, unknown and revoked tokens, scopes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from prismq.api import auth
from prismq.api.auth import (
    AuthenticationError,
    AuthorizationError,
    Principal,
    Scope,
    authenticate,
    hash_token,
)
from prismq.api.tokens import create_token, revoke_token
from prismq.queue import QueueDatabase


@pytest.fixture
def reader(db: QueueDatabase) -> tuple[int, str]:
    """A ``tasks:read`` token: (id, raw token)."""
    info, token = create_token(db, "reader", [Scope.TASKS_READ])
    return info.id, token


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(
    db: QueueDatabase, reader: tuple[int, str], scheme: str
) -> None:
    token_id, token = reader
    principal = authenticate(db, f"{scheme} {token}")
    assert principal == Principal(
        token_id=token_id, name="reader", scopes=frozenset({Scope.TASKS_READ})
    )


def test_surrounding_whitespace_is_tolerated(db: QueueDatabase, reader: tuple[int, str]) -> None:
    token_id, token = reader
    assert authenticate(db, f"  Bearer   {token} ").token_id == token_id


@pytest.mark.parametrize(
    ("header", "detail_start"),
    [
        (None, "missing credentials"),
        ("", "missing credentials"),
        ("   ", "missing credentials"),
        ("Bearer", "malformed Authorization header"),
        ("Bearer ", "malformed Authorization header"),
        ("Basic dXNlcjpwYXNz", "malformed Authorization header"),
        ("Token abc", "malformed Authorization header"),
        ("Bearer a b", "malformed Authorization header"),
        ("Bearerabc", "malformed Authorization header"),
        ("Bearer " + "x" * (auth.MAX_TOKEN_LENGTH + 1), "malformed bearer token"),
        ("Bearer pq_caf\u00e9", "malformed bearer token"),
    ],
)
def test_missing_or_malformed_headers_are_rejected(
    db: QueueDatabase, header: str | None, detail_start: str
) -> None:
    with pytest.raises(AuthenticationError) as raised:
        authenticate(db, header)
    assert raised.value.detail.startswith(detail_start)


def test_an_unknown_token_is_rejected_without_echoing_it(db: QueueDatabase) -> None:
    presented = "pq_thisTokenWasNeverIssued000000000000000000"
    with pytest.raises(AuthenticationError) as raised:
        authenticate(db, f"Bearer {presented}")
    assert raised.value.detail == "invalid token"
    assert presented not in str(raised.value)


def test_a_token_that_differs_by_one_character_is_unknown(
    db: QueueDatabase, reader: tuple[int, str]
) -> None:
    _, token = reader
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match="invalid token"):
        authenticate(db, f"Bearer {altered}")


def test_a_revoked_token_is_rejected(db: QueueDatabase, reader: tuple[int, str]) -> None:
    token_id, token = reader
    revoke_token(db, token_id)
    with pytest.raises(AuthenticationError) as raised:
        authenticate(db, f"Bearer {token}")
    assert raised.value.detail == "this token has been revoked"
    assert token not in raised.value.detail


def test_revoking_one_token_leaves_the_others_working(
    db: QueueDatabase, reader: tuple[int, str]
) -> None:
    other, other_token = create_token(db, "other", ["tasks:write"])
    revoke_token(db, reader[0])
    assert authenticate(db, f"Bearer {other_token}").token_id == other.id


def test_the_hashes_are_compared_in_constant_time(
    db: QueueDatabase, reader: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = reader
    compared: list[tuple[str, str]] = []
    real_compare_digest = hmac.compare_digest

    def spy(stored: str, presented: str) -> bool:
        compared.append((stored, presented))
        return real_compare_digest(stored, presented)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    authenticate(db, f"Bearer {token}")
    assert compared == [(hash_token(token), hash_token(token))]


def test_a_failing_constant_time_compare_rejects_the_token(
    db: QueueDatabase, reader: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compare decides, not just the lookup: a mismatch it reports is a rejection.
    monkeypatch.setattr(hmac, "compare_digest", lambda stored, presented: False)
    with pytest.raises(AuthenticationError, match="invalid token"):
        authenticate(db, f"Bearer {reader[1]}")


def test_the_stored_hash_is_sha256_hex_of_the_token() -> None:
    token = "pq_example"
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(hash_token(token)) == 64


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        ({Scope.TASKS_READ}, {Scope.TASKS_READ}),
        ({Scope.TASKS_WRITE}, {Scope.TASKS_WRITE}),
        ({Scope.TASKS_READ, Scope.TASKS_WRITE}, {Scope.TASKS_READ, Scope.TASKS_WRITE}),
        ({Scope.ADMIN}, set(Scope)),
        (set(), set()),
    ],
)
def test_allows_each_granted_scope_and_admin_allows_all(
    scopes: set[Scope], allowed: set[Scope]
) -> None:
    principal = Principal(token_id=1, name="t", scopes=frozenset(scopes))
    assert {scope for scope in Scope if principal.allows(scope)} == allowed


def test_write_does_not_imply_read() -> None:
    writer = Principal(token_id=1, name="producer", scopes=frozenset({Scope.TASKS_WRITE}))
    assert not writer.allows(Scope.TASKS_READ)
    with pytest.raises(AuthorizationError) as raised:
        writer.require(Scope.TASKS_READ)
    assert raised.value.detail == "this token lacks the 'tasks:read' scope"


def test_require_passes_for_an_allowed_scope() -> None:
    admin = Principal(token_id=1, name="ops", scopes=frozenset({Scope.ADMIN}))
    reader = Principal(token_id=2, name="dashboard", scopes=frozenset({Scope.TASKS_READ}))
    for principal, scope in [
        (admin, Scope.ADMIN),
        (admin, Scope.TASKS_READ),
        (reader, Scope.TASKS_READ),
    ]:
        principal.require(scope)  # AuthorizationError would fail the test
    with pytest.raises(AuthorizationError, match="lacks the 'admin' scope"):
        reader.require(Scope.ADMIN)


def test_authenticate_returns_the_stored_scopes(db: QueueDatabase) -> None:
    info, token = create_token(db, "both", ["tasks:write", "tasks:read"])
    principal = authenticate(db, f"Bearer {token}")
    assert principal.scopes == frozenset({Scope.TASKS_READ, Scope.TASKS_WRITE})
    assert principal.token_id == info.id


def test_unknown_stored_scopes_are_ignored() -> None:
    # A row written by a newer release may carry a scope this one does not know.
    assert auth.parse_scopes(["tasks:read", "tasks:future"]) == frozenset({Scope.TASKS_READ})
    assert auth.parse_scopes("admin") == frozenset()


def test_scopes_print_as_their_value() -> None:
    assert str(Scope.TASKS_WRITE) == "tasks:write"
    assert Scope("admin") is Scope.ADMIN
