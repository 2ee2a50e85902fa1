"""Create, list and revoke API tokens (what ``prismq-api tokens ...`` runs).

A token is ``pq_`` followed by 43 URL-safe characters (``secrets.token_urlsafe(32)``: 256
random bits). It is returned once by :func:`create_token`; only its SHA-256 hash is stored
(see :mod:`prismq.api.auth` for why a fast hash suffices).

Names: 1-200 characters, not blank and not all digits (so ``revoke_token("12")`` always
means the token with id 12). Two *active* tokens may not share a name, so a name names one
token to revoke; a revoked token's name can be reused.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, RowMapping, insert, select, update

from prismq.api.auth import Scope, hash_token, parse_scopes
from prismq.queue import QueueDatabase
from prismq.queue.tables import api_token_table

__all__ = [
    "MAX_NAME_LENGTH",
    "TOKEN_PREFIX",
    "ApiTokenInfo",
    "create_token",
    "list_tokens",
    "revoke_token",
]

#: Every token starts with this, so a leaked one is recognisable (e.g. by secret scanners).
TOKEN_PREFIX = "pq_"  # noqa: S105 - a public prefix, not a secret
#: Longest token name (the column's width).
MAX_NAME_LENGTH = 200

_t = api_token_table
# Everything but the hash: nothing outside authentication ever reads it.
_INFO_COLUMNS = (_t.c.id, _t.c.name, _t.c.scopes, _t.c.created_at_utc, _t.c.revoked_at_utc)


@dataclass(frozen=True)
class ApiTokenInfo:
    """A token as listed: never the token or its hash."""

    id: int
    name: str
    scopes: tuple[Scope, ...]
    created_at_utc: dt.datetime
    revoked_at_utc: dt.datetime | None

    @property
    def revoked(self) -> bool:
        """True once the token has been revoked."""
        return self.revoked_at_utc is not None


def _info(row: RowMapping) -> ApiTokenInfo:
    return ApiTokenInfo(
        id=int(row["id"]),
        name=str(row["name"]),
        scopes=_ordered(parse_scopes(row["scopes"])),
        created_at_utc=row["created_at_utc"],
        revoked_at_utc=row["revoked_at_utc"],
    )


def _ordered(scopes: Collection[Scope]) -> tuple[Scope, ...]:
    # Declaration order, so listings read the same whatever order the scopes were given in.
    return tuple(scope for scope in Scope if scope in scopes)


def _validated_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name: expected a string, not {type(name).__name__}")
    if not name.strip():
        raise ValueError("name: must not be empty or blank")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"name: at most {MAX_NAME_LENGTH} characters, not {len(name)}")
    if name.isdigit():
        raise ValueError(f"name: {name!r} is a number, which would read as a token id")
    return name


def _validated_scopes(scopes: Collection[Scope | str]) -> tuple[Scope, ...]:
    if isinstance(scopes, str):
        raise TypeError(f"scopes: expected a collection of scopes, not the string {scopes!r}")
    known = {scope.value: scope for scope in Scope}
    chosen: set[Scope] = set()
    for value in scopes:
        scope = known.get(value.value if isinstance(value, Scope) else str(value))
        if scope is None:
            raise ValueError(f"scopes: unknown scope {value!r}; known scopes: {', '.join(known)}")
        chosen.add(scope)
    if not chosen:
        raise ValueError(f"scopes: give at least one of {', '.join(known)}")
    return _ordered(chosen)


def create_token(
    db: QueueDatabase, name: str, scopes: Collection[Scope | str]
) -> tuple[ApiTokenInfo, str]:
    """Store a new token; returns its description and the raw token (shown only this once).

    Raises ``ValueError`` naming the field for a bad name or scope, or when an active token
    already has that name.
    """
    name = _validated_name(name)
    chosen = _validated_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.write() as conn:
        if _active_ids_named(conn, name):
            raise ValueError(f"name: an active token is already named {name!r}")
        row = (
            conn.execute(
                insert(_t)
                .values(
                    name=name,
                    token_hash=hash_token(token),
                    scopes=[scope.value for scope in chosen],
                    created_at_utc=db.dialect.now(),
                )
                .returning(*_INFO_COLUMNS)
            )
            .mappings()
            .one()
        )
    return _info(row), token


def list_tokens(db: QueueDatabase, *, include_revoked: bool = True) -> list[ApiTokenInfo]:
    """Every token, oldest first (only active ones with ``include_revoked=False``)."""
    query = select(*_INFO_COLUMNS).order_by(_t.c.id)
    if not include_revoked:
        query = query.where(_t.c.revoked_at_utc.is_(None))
    with db.read() as conn:
        return [_info(row) for row in conn.execute(query).mappings()]


def _active_ids_named(conn: Connection, name: str) -> list[int]:
    query = select(_t.c.id).where(_t.c.name == name, _t.c.revoked_at_utc.is_(None))
    return [int(token_id) for token_id in conn.execute(query.order_by(_t.c.id)).scalars()]


def _resolve_id(conn: Connection, token_id_or_name: int | str) -> int:
    if isinstance(token_id_or_name, int):
        return token_id_or_name
    if token_id_or_name.isdigit():
        return int(token_id_or_name)
    active = _active_ids_named(conn, token_id_or_name)
    if len(active) > 1:
        # Only possible when two creations raced on PostgreSQL; refuse to guess.
        ids = ", ".join(map(str, active))
        raise LookupError(
            f"several active tokens are named {token_id_or_name!r} (ids {ids}): revoke by id"
        )
    if active:
        return active[0]
    newest_revoked = conn.execute(
        select(_t.c.id).where(_t.c.name == token_id_or_name).order_by(_t.c.id.desc()).limit(1)
    ).scalar()
    if newest_revoked is None:
        raise LookupError(f"no API token named {token_id_or_name!r}")
    return int(newest_revoked)


def revoke_token(db: QueueDatabase, token_id_or_name: int | str) -> ApiTokenInfo:
    """Revoke a token by id or name; it stops authenticating at once.

    Revoking is idempotent: an already revoked token is returned unchanged (its original
    ``revoked_at_utc`` kept). Raises ``LookupError`` when no token has that id or name.
    """
    with db.write() as conn:
        token_id = _resolve_id(conn, token_id_or_name)
        conn.execute(
            update(_t)
            .where(_t.c.id == token_id, _t.c.revoked_at_utc.is_(None))
            .values(revoked_at_utc=db.dialect.now())
        )
        row = conn.execute(select(*_INFO_COLUMNS).where(_t.c.id == token_id)).mappings().first()
    if row is None:
        raise LookupError(f"no API token with id {token_id}")
    return _info(row)
