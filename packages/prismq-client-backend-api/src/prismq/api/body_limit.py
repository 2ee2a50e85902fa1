"""Reject request bodies over a size limit before they are read whole.

:class:`BodySizeLimitMiddleware` is plain ASGI, so it sits in front of everything else and
never buffers a body itself:

- a ``Content-Length`` over the limit is answered ``413`` at once, without reading any of
  the body and without calling the application;
- otherwise (chunked transfer, or a ``Content-Length`` that lies) it counts the bytes as the
  application pulls them, and the moment the running total passes the limit it answers
  ``413`` itself and stops handing the application any more of the body.

The ``413`` is an ``application/problem+json`` document, like every other API error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prismq.api.problems import PROBLEM_MEDIA_TYPE, problem_document

__all__ = ["BodySizeLimitMiddleware", "RequestBodyTooLargeError"]


class RequestBodyTooLargeError(Exception):
    """Raised into the application when the body it is reading passes the limit."""


@dataclass
class _Exchange:
    """What one request/response exchange has done so far."""

    received_bytes: int = 0
    response_started: bool = False
    rejected: bool = False


def _declared_length(scope: Scope) -> int | None:
    """The largest ``Content-Length`` the client declared, or None if none is usable."""
    lengths = [
        int(value)
        for name, value in scope.get("headers", [])
        if name.lower() == b"content-length" and value.strip().isdigit()
    ]
    return max(lengths, default=None)


class BodySizeLimitMiddleware:
    """Answer ``413`` to HTTP requests whose body exceeds ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes: must be >= 0, not {max_body_bytes}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._send_413(send)
            return

        exchange = _Exchange()

        async def receive_within_limit() -> Message:
            if exchange.rejected or exchange.received_bytes > self.max_body_bytes:
                # The application asks again after the limit: the request is over for it.
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                exchange.received_bytes += len(message.get("body", b""))
                if exchange.received_bytes > self.max_body_bytes:
                    if not exchange.response_started:
                        await self._send_413(send)
                        exchange.rejected = True
                    raise RequestBodyTooLargeError(
                        f"request body exceeds {self.max_body_bytes} bytes"
                    )
            return message

        async def send_unless_rejected(message: Message) -> None:
            if exchange.rejected:
                # The 413 has been sent; whatever the application answers to the
                # interrupted read (often a 400 or 500) must not follow it.
                return
            if message["type"] == "http.response.start":
                exchange.response_started = True
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_rejected)
        except Exception:
            # Past the limit the exchange is over: either the 413 went out, or the
            # application had already started its response and is simply cut short.
            if exchange.received_bytes > self.max_body_bytes:
                return
            raise

    async def _send_413(self, send: Send) -> None:
        detail = f"the request body exceeds the limit of {self.max_body_bytes} bytes"
        body = json.dumps(
            problem_document(413, detail, title="Request body too large"),
            separators=(",", ":"),
        ).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode("ascii")),
                    (b"content-length", str(len(body)).encode("ascii")),
                    # The rest of the body is never read, so the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
