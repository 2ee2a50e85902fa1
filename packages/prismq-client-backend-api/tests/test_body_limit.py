"""The request body limit: 413 before a body is read whole, and memory that does not grow.

Bodies are sent both with a ``Content-Length`` (rejected before any of the body is read)
and streamed without one (chunked: counted as it arrives, rejected once past the limit).
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prismq.api.app import create_app
from prismq.api.auth import Scope as TokenScope
from prismq.api.body_limit import BodySizeLimitMiddleware, RequestBodyTooLargeError
from prismq.api.settings import ApiSettings
from prismq.api.tokens import create_token
from prismq.queue import QueueDatabase

KIB = 1024
MIB = 1024 * KIB
CHUNK = 64 * KIB
LIMIT = 1 * MIB
ENQUEUE = "/api/queue/enqueue"


# -- a trivial downstream application ----------------------------------------------------


@dataclass
class CountingApp:
    """Reads the whole body without keeping it, then answers 200 with the byte count."""

    calls: int = 0
    received: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        more_body = True
        while more_body:
            message = await receive()
            self.received += len(message.get("body", b""))
            more_body = message.get("more_body", False)
        body = json.dumps({"received": self.received}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


@dataclass
class BodySource:
    """A streamed body of ``total`` bytes, a fresh chunk per read, like a socket."""

    total: int
    pulled: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            size = min(CHUNK, self.total - self.pulled)
            self.pulled += size
            yield bytes(size)


@dataclass
class Recorded:
    """The messages one raw ASGI call sent, and how often the application read the body."""

    sent: list[Message] = field(default_factory=list)
    reads: int = 0

    @property
    def status(self) -> int:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return int(starts[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    def header(self, name: bytes) -> bytes | None:
        (start,) = [m for m in self.sent if m["type"] == "http.response.start"]
        return next((v for k, v in start["headers"] if k.lower() == name), None)


def call_raw(
    app: ASGIApp, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None
) -> Recorded:
    """Run one HTTP POST through ``app`` at the ASGI level, the body in ``chunks``."""
    recorded = Recorded()
    pending = list(chunks)

    async def receive() -> Message:
        recorded.reads += 1
        if not pending:
            return {"type": "http.disconnect"}
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        recorded.sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": ENQUEUE,
        "raw_path": ENQUEUE.encode(),
        "query_string": b"",
        "headers": headers or [],
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return recorded


def assert_is_413_problem(recorded: Recorded, limit: int = LIMIT) -> None:
    assert recorded.status == 413
    assert recorded.header(b"content-type") == b"application/problem+json"
    document = json.loads(recorded.body)
    assert document == {
        "type": "about:blank",
        "title": "Request body too large",
        "status": 413,
        "detail": f"the request body exceeds the limit of {limit} bytes",
    }
    assert recorded.header(b"content-length") == str(len(recorded.body)).encode()


# -- the middleware around a trivial application -----------------------------------------


def test_a_declared_length_over_the_limit_is_rejected_before_any_read() -> None:
    downstream = CountingApp()
    recorded = call_raw(
        BodySizeLimitMiddleware(downstream, LIMIT),
        [bytes(CHUNK)] * 40,
        headers=[(b"content-length", str(40 * CHUNK).encode())],
    )
    assert_is_413_problem(recorded)
    assert recorded.reads == 0
    assert downstream.calls == 0


def test_a_body_at_the_limit_passes_whole() -> None:
    downstream = CountingApp()
    recorded = call_raw(
        BodySizeLimitMiddleware(downstream, LIMIT),
        [bytes(CHUNK)] * (LIMIT // CHUNK),
        headers=[(b"content-length", str(LIMIT).encode())],
    )
    assert recorded.status == 200
    assert json.loads(recorded.body) == {"received": LIMIT}


def test_a_streamed_body_is_cut_off_one_chunk_past_the_limit() -> None:
    downstream = CountingApp()
    recorded = call_raw(BodySizeLimitMiddleware(downstream, LIMIT), [bytes(CHUNK)] * 100)
    assert_is_413_problem(recorded)
    # The limit is 16 chunks: the 17th passes it, and nothing after it is read.
    assert recorded.reads == LIMIT // CHUNK + 1
    assert downstream.received == LIMIT


def test_a_lying_content_length_does_not_help() -> None:
    recorded = call_raw(
        BodySizeLimitMiddleware(CountingApp(), LIMIT),
        [bytes(CHUNK)] * 40,
        headers=[(b"content-length", b"10")],
    )
    assert_is_413_problem(recorded)
    assert recorded.reads == LIMIT // CHUNK + 1


def test_the_largest_of_several_content_lengths_counts() -> None:
    recorded = call_raw(
        BodySizeLimitMiddleware(CountingApp(), 100),
        [b"x" * 10],
        headers=[(b"content-length", b"10"), (b"content-length", b"5000")],
    )
    assert_is_413_problem(recorded, limit=100)
    assert recorded.reads == 0


def test_an_unusable_content_length_falls_back_to_counting() -> None:
    recorded = call_raw(
        BodySizeLimitMiddleware(CountingApp(), 100),
        [b"x" * 60, b"x" * 60],
        headers=[(b"content-length", b"lots")],
    )
    assert_is_413_problem(recorded, limit=100)
    assert recorded.reads == 2


@dataclass
class AnswersAfterFailedRead:
    """Turns any error while reading into its own 400, as web frameworks do."""

    error: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while (await receive()).get("more_body", False):
                pass
        except RequestBodyTooLargeError as error:
            self.error = error
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"bad body"})


def test_the_application_answer_to_the_interrupted_read_is_dropped() -> None:
    downstream = AnswersAfterFailedRead()
    recorded = call_raw(BodySizeLimitMiddleware(downstream, 100), [b"x" * 80] * 3)
    assert isinstance(downstream.error, RequestBodyTooLargeError)
    assert_is_413_problem(recorded, limit=100)


@dataclass
class RespondsWhileReading:
    """Starts its response first, then reads the body (a streaming echo, say)."""

    reads_after_error: list[Message] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while (await receive()).get("more_body", False):
                await send({"type": "http.response.body", "body": b".", "more_body": True})
        except RequestBodyTooLargeError:
            self.reads_after_error.append(await receive())
            raise


def test_a_response_already_started_is_just_stopped() -> None:
    downstream = RespondsWhileReading()
    recorded = call_raw(BodySizeLimitMiddleware(downstream, 100), [b"x" * 40] * 10)
    # No 413 can follow a started response: the exchange simply ends, without an error.
    assert recorded.status == 200
    assert recorded.body == b".."
    assert recorded.reads == 3
    assert downstream.reads_after_error == [{"type": "http.disconnect"}]


def test_other_application_errors_propagate() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        call_raw(BodySizeLimitMiddleware(broken, 100), [b"x" * 10])


def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def run() -> None:
        async def receive() -> Message:
            return {"type": "lifespan.startup"}

        async def send(message: Message) -> None:
            return None

        await BodySizeLimitMiddleware(app, 0)({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert seen == ["lifespan"]


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_body_bytes: must be >= 0, not -1"):
        BodySizeLimitMiddleware(CountingApp(), -1)


# -- memory: peak allocation while a large body is refused -------------------------------


@dataclass
class Outcome:
    status: int
    content_type: str
    pulled: int
    peak_above_baseline: int


def post_measured(
    app: ASGIApp, body_bytes: int, *, stream: bool, headers: dict[str, str] | None = None
) -> Outcome:
    """POST ``body_bytes`` to ``app`` in-process; the peak allocation is measured meanwhile."""
    source = BodySource(body_bytes)

    async def run() -> tuple[httpx.Response, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            # Warm up: the first request builds caches that are not the body's doing.
            await client.post(ENQUEUE, headers=headers, content=b"{}")
            tracemalloc.start()
            try:
                baseline, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                # Even with a declared Content-Length the body is produced lazily, so that
                # generating the test's body is not what fills the memory.
                request_headers = dict(headers or {})
                if not stream:
                    request_headers["content-length"] = str(body_bytes)
                response = await client.post(
                    ENQUEUE, headers=request_headers, content=source.chunks()
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            return response, peak - baseline

    response, peak = asyncio.run(run())
    return Outcome(response.status_code, response.headers["content-type"], source.pulled, peak)


BODY_SIZES = [pytest.param(2 * MIB, id="2MiB"), pytest.param(64 * MIB, id="64MiB")]
FAR_BELOW = 1 * MIB


@pytest.mark.parametrize("body_bytes", BODY_SIZES)
@pytest.mark.parametrize("stream", [True, False], ids=["chunked", "content-length"])
def test_the_middleware_refuses_large_bodies_in_constant_memory(
    body_bytes: int, stream: bool
) -> None:
    outcome = post_measured(
        BodySizeLimitMiddleware(CountingApp(), LIMIT), body_bytes, stream=stream
    )
    assert outcome.status == 413
    assert outcome.content_type == "application/problem+json"
    assert outcome.peak_above_baseline < FAR_BELOW, outcome
    # What was read of the body is bounded by the limit, not by the body's size.
    assert outcome.pulled <= (LIMIT + CHUNK if stream else 0), outcome


# -- the real application ----------------------------------------------------------------


@pytest.fixture
def writer_headers(db: QueueDatabase) -> dict[str, str]:
    _, token = create_token(db, "body-limit-writer", [TokenScope.TASKS_WRITE])
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


@pytest.fixture
def app_with_limit(db: QueueDatabase) -> Callable[[int], ASGIApp]:
    def build(max_body_bytes: int) -> ASGIApp:
        return create_app(ApiSettings(api_max_body_bytes=max_body_bytes), database=db)

    return build


def post(
    app: ASGIApp, headers: dict[str, str], content: bytes | AsyncIterator[bytes]
) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.post(ENQUEUE, headers=headers, content=content)

    return asyncio.run(run())


def enqueue_body(size: int) -> bytes:
    """A valid enqueue request of exactly ``size`` bytes."""
    padding = size - len(b'{"type":"t","payload":{"blob":""}}')
    return b'{"type":"t","payload":{"blob":"' + b"a" * padding + b'"}}'


async def in_chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def test_the_limit_defaults_to_one_mebibyte() -> None:
    assert ApiSettings().api_max_body_bytes == MIB


@pytest.mark.parametrize("stream", [True, False], ids=["chunked", "content-length"])
def test_the_app_refuses_a_2mib_enqueue(
    db: QueueDatabase, writer_headers: dict[str, str], stream: bool
) -> None:
    body = enqueue_body(2 * MIB)
    response = post(
        create_app(ApiSettings(), database=db),
        writer_headers,
        in_chunks(body) if stream else body,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"the request body exceeds the limit of {MIB} bytes"


@pytest.mark.parametrize("stream", [True, False], ids=["chunked", "content-length"])
def test_the_app_accepts_an_enqueue_at_the_limit(
    db: QueueDatabase, writer_headers: dict[str, str], stream: bool
) -> None:
    body = enqueue_body(MIB)
    response = post(
        create_app(ApiSettings(), database=db),
        writer_headers,
        in_chunks(body) if stream else body,
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("body_bytes", BODY_SIZES)
@pytest.mark.parametrize("stream", [True, False], ids=["chunked", "content-length"])
def test_the_app_refuses_large_enqueues_in_constant_memory(
    app_with_limit: Callable[[int], ASGIApp],
    writer_headers: dict[str, str],
    body_bytes: int,
    stream: bool,
) -> None:
    # The application keeps what it reads of a body until the body is complete (to parse
    # it), so with a 256 KiB limit at most about that much of any body is ever held.
    limit = 256 * KIB
    outcome = post_measured(
        app_with_limit(limit), body_bytes, stream=stream, headers=writer_headers
    )
    assert outcome.status == 413
    assert outcome.content_type == "application/problem+json"
    assert outcome.peak_above_baseline < FAR_BELOW, outcome
    assert outcome.pulled <= (limit + CHUNK if stream else 0), outcome
