"""The temporary server's app retries, inside the server, what Prefect's server answers 503.

The app under the wrapper is a FastAPI app with Prefect's own exception handler
(``custom_internal_exception_handler``), raising the exception SQLAlchemy raises for a locked SQLite database,
so the 503 and Starlette's re-raise after it are Prefect's. The temporary server's boot through
``deployments.server_app:create_app`` is exercised by every CLI test that runs without ``PREFECT_API_URL``.
"""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from prefect.server.api.server import custom_internal_exception_handler

from deployments.server_app import MAX_REPLAYED_BODY, retrying_503

SHORT_DELAYS = (0.001, 0.001, 0.001)


def locked() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("UPDATE concurrency_limit_v2 ...", {}, sqlite3.OperationalError("database is locked"))


def app_failing(times: int, error=locked) -> tuple[FastAPI, list[bytes]]:
    """An app whose POST /slots fails ``times`` times with ``error()``, then echoes the body's length."""
    app = FastAPI(exception_handlers={Exception: custom_internal_exception_handler})
    bodies: list[bytes] = []

    @app.post("/api/slots")
    async def slots(request: Request) -> dict:
        bodies.append(await request.body())
        if len(bodies) <= times:
            raise error()
        return {"length": len(bodies[-1])}

    @app.get("/api/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a" * 10, b"b" * 10]), status_code=200)

    return app, bodies


def send(app, method: str, path: str, content: bytes = b"") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.request(method, path, content=content)

    return asyncio.run(go())


def test_a_locked_database_is_retried_inside_the_server_with_the_same_body():
    app, bodies = app_failing(times=2)
    body = b'{"names": ["tag:local"], "slots": 1}'
    answer = send(retrying_503(app, SHORT_DELAYS), "POST", "/api/slots", body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"length": len(body)}
    assert bodies == [body] * 3


def test_a_lock_that_stays_reaches_the_client_as_503_after_the_last_try():
    app, bodies = app_failing(times=100)
    answer = send(retrying_503(app, SHORT_DELAYS), "POST", "/api/slots", b"{}")
    assert answer.status_code == 503
    assert answer.json() == {"exception_message": "Service Unavailable"}
    assert len(bodies) == len(SHORT_DELAYS) + 1


def test_an_error_the_server_does_not_call_retryable_is_answered_once():
    app, bodies = app_failing(times=1, error=lambda: ValueError("a bug"))
    answer = send(retrying_503(app, SHORT_DELAYS), "POST", "/api/slots", b"{}")
    assert answer.status_code == 500
    assert len(bodies) == 1


def test_a_body_too_large_to_hold_is_passed_through_and_not_replayed():
    app, bodies = app_failing(times=1)
    body = bytes(range(256)) * (MAX_REPLAYED_BODY // 256 + 2)
    answer = send(retrying_503(app, SHORT_DELAYS), "POST", "/api/slots", body)
    assert answer.status_code == 503
    assert bodies == [body]


def test_a_streamed_answer_passes_through_whole():
    app, _ = app_failing(times=0)
    answer = send(retrying_503(app, SHORT_DELAYS), "GET", "/api/stream")
    assert answer.status_code == 200
    assert answer.content == b"a" * 10 + b"b" * 10
