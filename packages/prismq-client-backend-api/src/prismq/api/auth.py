"""Bearer-token authentication and scope checks for the REST API.

A client sends ``Authorization: Bearer <token>``. The token is looked up by its SHA-256
hash in the ``api_tokens`` table; the token itself is never stored, logged or echoed in an
error message.

Why SHA-256 and not bcrypt/argon2: those slow hashes exist to make guessing a *low-entropy*
secret (a password) expensive. A PrismQ token is 256 random bits
(``secrets.token_urlsafe(32)``), so no amount of hashing speed makes guessing it feasible,
and a fast hash lets every request be checked with one indexed lookup instead of a
deliberately slow computation per request.

Scopes: ``tasks:read`` reads tasks, stats and workers; ``tasks:write`` enqueues, cancels and
retries; ``admin`` allows everything. ``tasks:write`` does **not** imply ``tasks:read``: a
producer that only enqueues need not be able to read other producers' payloads. Give a
token both scopes when it needs both.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import sys
from dataclasses import dataclass

from sqlalchemy import select

from prismq.queue import QueueDatabase
from prismq.queue.tables import api_token_table

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        """``enum.StrEnum`` of Python 3.11: members are strings and print as their value."""

        def __str__(self) -> str:
            return str(self.value)


__all__ = [
    "BEARER_SCHEME",
    "MAX_TOKEN_LENGTH",
    "AuthenticationError",
    "AuthorizationError",
    "Principal",
    "Scope",
    "authenticate",
    "hash_token",
    "parse_scopes",
]

#: The ``WWW-Authenticate`` challenge (and the ``Authorization`` scheme) the API uses.
BEARER_SCHEME = "Bearer"

#: Longer credentials are rejected before hashing: real tokens are 46 characters.
MAX_TOKEN_LENGTH = 256


class Scope(StrEnum):
    """What a token may do."""

    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    ADMIN = "admin"


class AuthenticationError(Exception):
    """No credentials, malformed credentials, or an unknown or revoked token (HTTP 401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AuthorizationError(Exception):
    """A valid token that lacks the scope the operation needs (HTTP 403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: which token, and what it may do."""

    token_id: int
    name: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        """True if the token has ``scope``, or ``admin`` (which allows everything)."""
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def require(self, scope: Scope) -> None:
        """Raise :class:`AuthorizationError` unless the token :meth:`allows` ``scope``."""
        if not self.allows(scope):
            raise AuthorizationError(f"this token lacks the {scope.value!r} scope")


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(values: object) -> frozenset[Scope]:
    """The known scopes among stored values; unknown ones (from a newer release) are ignored."""
    if not isinstance(values, list):
        return frozenset()
    known = {scope.value for scope in Scope}
    return frozenset(Scope(value) for value in values if isinstance(value, str) and value in known)


def _bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or AuthenticationError."""
    if authorization is None or not authorization.strip():
        raise AuthenticationError("missing credentials: send 'Authorization: Bearer <token>'")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != BEARER_SCHEME.lower():
        # The header is not echoed: a misplaced token may be in it.
        raise AuthenticationError("malformed Authorization header: expected 'Bearer <token>'")
    token = parts[1]
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise AuthenticationError("malformed bearer token")
    return token


def authenticate(db: QueueDatabase, authorization: str | None) -> Principal:
    """The principal of the token in the ``Authorization`` header value.

    Raises :class:`AuthenticationError` for a missing or malformed header and for an unknown
    or revoked token; database errors propagate as PrismQ errors.
    """
    token = _bearer_token(authorization)
    presented_hash = hash_token(token)
    with db.read() as conn:
        row = (
            conn.execute(
                select(
                    api_token_table.c.id,
                    api_token_table.c.name,
                    api_token_table.c.token_hash,
                    api_token_table.c.scopes,
                    api_token_table.c.revoked_at_utc,
                ).where(api_token_table.c.token_hash == presented_hash)
            )
            .mappings()
            .first()
        )
    # The indexed lookup already matched; comparing again in constant time keeps the
    # decision itself free of a timing side channel, whatever the database's comparison does.
    if row is None or not hmac.compare_digest(str(row["token_hash"]), presented_hash):
        raise AuthenticationError("invalid token")
    if row["revoked_at_utc"] is not None:
        raise AuthenticationError("this token has been revoked")
    return Principal(
        token_id=int(row["id"]), name=str(row["name"]), scopes=parse_scopes(row["scopes"])
    )
