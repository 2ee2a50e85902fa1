"""Checking that a pooled connection still works only when it has been idle a while.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip for every
transaction, which on a busy worker costs as much as the work itself. A connection
handed back moments ago is as good as the last statement it ran; one that sat idle may
have been cut by a server restart, a failover or a proxy's idle timeout, so only those
are pinged. A dead one is replaced before the caller sees it.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event, exc
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

_CHECKED_IN_AT = "prismq_checked_in_at"


def ping_connections_idle_for(engine: Engine, idle_seconds: float) -> None:
    """Ping a connection at checkout when it was checked in more than ``idle_seconds`` ago."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.pop(_CHECKED_IN_AT, None)
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return  # brand new, or used moments ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"pooled connection failed its ping: {error}") from error
        if not alive:
            raise exc.DisconnectionError("pooled connection failed its ping")
