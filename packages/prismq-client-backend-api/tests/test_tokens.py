"""Creating, listing and revoking API tokens."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from prismq.api.auth import Scope, authenticate, hash_token
from prismq.api.tokens import (
    MAX_NAME_LENGTH,
    TOKEN_PREFIX,
    ApiTokenInfo,
    create_token,
    list_tokens,
    revoke_token,
)
from prismq.queue import QueueDatabase
from prismq.queue.models import api_token_table


def _stored_rows(db: QueueDatabase) -> list[dict[str, object]]:
    with db.read() as conn:
        return [dict(row) for row in conn.execute(select(api_token_table)).mappings()]


def test_create_returns_the_token_once_and_stores_only_its_hash(db: QueueDatabase) -> None:
    info, token = create_token(db, "ci", [Scope.TASKS_WRITE, "tasks:read"])
    assert re.fullmatch(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}", token)
    assert info.name == "ci"
    assert info.scopes == (Scope.TASKS_READ, Scope.TASKS_WRITE)
    assert info.revoked_at_utc is None
    assert not info.revoked
    assert info.created_at_utc.tzinfo is not None
    assert abs(info.created_at_utc - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    (row,) = _stored_rows(db)
    assert row["token_hash"] == hash_token(token)
    assert token not in {str(value) for value in row.values()}


def test_tokens_are_unique(db: QueueDatabase) -> None:
    tokens = {create_token(db, f"t{i}x", ["admin"])[1] for i in range(20)}
    assert len(tokens) == 20


def test_duplicate_scopes_are_stored_once(db: QueueDatabase) -> None:
    info, _ = create_token(db, "dup", ["admin", Scope.ADMIN, "admin"])
    assert info.scopes == (Scope.ADMIN,)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "name: must not be empty or blank"),
        ("   ", "name: must not be empty or blank"),
        ("x" * (MAX_NAME_LENGTH + 1), f"name: at most {MAX_NAME_LENGTH} characters, not 201"),
        ("42", "name: '42' is a number, which would read as a token id"),
    ],
)
def test_bad_names_are_rejected(db: QueueDatabase, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        create_token(db, name, ["admin"])
    assert list_tokens(db) == []


def test_the_longest_name_is_accepted(db: QueueDatabase) -> None:
    info, _ = create_token(db, "n" * MAX_NAME_LENGTH, ["admin"])
    assert info.name == "n" * MAX_NAME_LENGTH


def test_an_unknown_scope_is_named(db: QueueDatabase) -> None:
    with pytest.raises(ValueError, match=r"scopes: unknown scope 'tasks:delete'; known scopes"):
        create_token(db, "bad", ["tasks:read", "tasks:delete"])
    assert list_tokens(db) == []


def test_at_least_one_scope_is_needed(db: QueueDatabase) -> None:
    with pytest.raises(ValueError, match="scopes: give at least one of"):
        create_token(db, "none", [])


def test_a_bare_string_is_not_a_collection_of_scopes(db: QueueDatabase) -> None:
    with pytest.raises(TypeError, match="scopes: expected a collection of scopes"):
        create_token(db, "str", "admin")


def test_an_active_name_cannot_be_reused_but_a_revoked_one_can(db: QueueDatabase) -> None:
    first, _ = create_token(db, "deploy", ["tasks:write"])
    with pytest.raises(ValueError, match="name: an active token is already named 'deploy'"):
        create_token(db, "deploy", ["tasks:write"])
    revoke_token(db, first.id)
    second, token = create_token(db, "deploy", ["tasks:write"])
    assert second.id != first.id
    assert authenticate(db, f"Bearer {token}").token_id == second.id


def test_list_shows_every_token_oldest_first(db: QueueDatabase) -> None:
    a, _ = create_token(db, "a", ["tasks:read"])
    b, _ = create_token(db, "b", ["tasks:write"])
    revoked = revoke_token(db, a.id)
    assert list_tokens(db) == [revoked, b]
    assert list_tokens(db, include_revoked=False) == [b]
    assert all(isinstance(info, ApiTokenInfo) for info in list_tokens(db))
    assert not hasattr(b, "token_hash")


@pytest.mark.parametrize("by", ["id", "id-as-text", "name"])
def test_revoke_by_id_or_name(db: QueueDatabase, by: str) -> None:
    info, _ = create_token(db, "to-revoke", ["tasks:read"])
    keys: dict[str, int | str] = {"id": info.id, "id-as-text": str(info.id), "name": "to-revoke"}
    key = keys[by]
    revoked = revoke_token(db, key)
    assert revoked.id == info.id
    assert revoked.revoked_at_utc is not None
    assert revoked.revoked_at_utc >= info.created_at_utc
    assert list_tokens(db) == [revoked]


def test_revoking_again_returns_the_token_unchanged(db: QueueDatabase) -> None:
    info, _ = create_token(db, "twice", ["admin"])
    first = revoke_token(db, info.id)
    assert revoke_token(db, info.id) == first
    assert revoke_token(db, "twice") == first


def test_revoke_by_name_prefers_the_active_token(db: QueueDatabase) -> None:
    old, _ = create_token(db, "rotating", ["admin"])
    revoke_token(db, old.id)
    new, _ = create_token(db, "rotating", ["admin"])
    assert revoke_token(db, "rotating").id == new.id


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (999, "no API token with id 999"),
        ("ghost", "no API token named 'ghost'"),
        ("999", "no API token with id 999"),
    ],
)
def test_revoking_an_unknown_token_is_a_lookup_error(
    db: QueueDatabase, key: int | str, message: str
) -> None:
    with pytest.raises(LookupError, match=re.escape(message)):
        revoke_token(db, key)
