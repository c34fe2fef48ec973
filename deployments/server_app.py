"""Prefect's API app, for the command line's temporary server, with the server's retryable failures retried
inside the server.

Prefect's server answers 503 when a request meets an error it calls retryable: on SQLite, mostly "database is
locked", which a write meets when one of the server's own services (the event persister, the task-run
recorder) committed between the request's read and its write; the lock is gone a few milliseconds later. The
answer carries no ``Retry-After``, so Prefect's client waits its exponential back-off, 2 s for the first
retry. A migration paid that on the task after its download: its concurrency slot (``increment-with-lease``)
met the lock, and the command stood still for 2 s.

``retrying_503`` runs such a request again, with the same body, after 20 ms, then longer, for under 1 s in
all; only then does the 503 reach the client, whose own back-off takes over. It replays only what the server
itself answered 503 (what the client would send again anyway), only requests whose body it holds (up to
``MAX_REPLAYED_BODY``), and nothing streamed: a response that started with any other status passes through as
it is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_DELAYS_S = (0.02, 0.05, 0.1, 0.2, 0.4)
MAX_REPLAYED_BODY = 1024 * 1024


def retrying_503(app: ASGIApp, delays: tuple[float, ...] = RETRY_DELAYS_S) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body, more_body, stopped_at = await _read_body(receive)
        if more_body or stopped_at is not None:
            await app(scope, _replay(body, receive, more_body, stopped_at), send)
            return
        for delay in (*delays, None):
            answered_503 = await _attempt(app, dict(scope), _replay(body, receive), send, last=delay is None)
            if not answered_503 or delay is None:
                return
            await asyncio.sleep(delay)

    return wrapped


async def _read_body(receive: Receive) -> tuple[bytes, bool, Message | None]:
    """``(body, more_body, stopped_at)``: the request's body as far as it was read; whether more of it is to
    come (it outgrew ``MAX_REPLAYED_BODY``); the message that stopped the reading if it was not part of the
    body (the client went away)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False, message
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False, None
        if size > MAX_REPLAYED_BODY:
            return b"".join(chunks), True, None


def _replay(body: bytes, receive: Receive, more_body: bool = False, stopped_at: Message | None = None) -> Receive:
    """A ``receive`` that hands the app what ``_read_body`` read, then whatever the client sends next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": more_body}]
    if stopped_at is not None:
        pending.append(stopped_at)

    async def next_message() -> Message:
        return pending.pop(0) if pending else await receive()

    return next_message


async def _attempt(app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, last: bool) -> bool:
    """Run the request once; True if it was answered 503 and that answer was held back for another try."""
    held = False

    async def guarded_send(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and message["status"] == 503 and not last:
            held = True
        if not held:
            await send(message)

    try:
        await app(scope, receive, guarded_send)
    except Exception:
        # Starlette raises the error again after its handler sent the 503; the answer was held, so try again.
        if not held:
            raise
    return held


def create_app() -> ASGIApp:
    """What ``uvicorn --factory`` starts: Prefect's own app (``prefect.server.api.server.create_app``)."""
    from prefect.server.api.server import create_app as prefect_app

    return retrying_503(prefect_app())
