"""ASGI (uvicorn, hypercorn; Starlette, FastAPI): event streams in stream mode.

ASGI servers expose no socket, so the connection cannot be handed over. In stream mode
the engine still owns the client's state — channels, history and ``Last-Event-ID``
replay, heartbeats, limits, slow-client and timeout handling, disconnect detection —
and the app sends to it exactly as to a raw-mode client; only the bytes travel through
the ASGI server: :class:`EventStream` takes them from the engine when it reports them
ready and writes them with ``send``, one chunk at a time (honouring the server's
backpressure). When the client goes away the response ends and the engine forgets the
client (reason ``closed``); when the engine ends the client (``disconnect``,
``close_channel(..., disconnect=True)``, slow, timeout, shutdown) the response ends.

Starlette / FastAPI::

    @app.get("/events")
    async def events(request):
        return EventStream(engine, channels=["news"])

Plain ASGI: ``await EventStream(engine, channels=["news"])(scope, receive, send)``.

``EventStream`` is a ``starlette.responses.Response`` when Starlette is installed (so
FastAPI returns it untouched), and a plain ASGI callable otherwise. The client id is in
``stream.client_id`` once the response started, and ``on_client(client_id)`` (if
given) is called with it before the first byte is written.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

from .._engine import Engine, Headers, _headers
from .._native import EngineClosedError, LimitReachedError
from ._common import FROM_REQUEST, SSE_HEADERS, busy_answer, resume_id, stream_head

try:  # Starlette is optional: with it, FastAPI returns the object untouched.
    from starlette.responses import Response as _Base
except ImportError:  # pragma: no cover - exercised only without Starlette
    _Base = object  # type: ignore[assignment,misc]

__all__ = ["EventStream", "last_event_id_of", "close_on_server_exit"]

#: Most bytes taken from the engine (and written in one ASGI message) at a time.
DEFAULT_CHUNK = 64 * 1024


def last_event_id_of(scope: dict) -> Optional[str]:
    """``Last-Event-ID`` of an ASGI HTTP scope: the header, else ``?lastEventId=``."""
    header = None
    for name, value in scope.get("headers", ()):
        if name == b"last-event-id":
            header = value.decode("latin-1")
            break
    query = scope.get("query_string", b"").decode("latin-1")
    return resume_id(header, query)


class EventStream(_Base):  # type: ignore[misc,valid-type]
    """An ASGI response streaming one stream-mode client of ``engine``."""

    media_type = dict(SSE_HEADERS)["Content-Type"]  # the engine's

    def __init__(
        self,
        engine: Engine,
        *,
        channels: Union[str, Iterable[str], None] = (),
        user: Optional[str] = None,
        metadata: Any = None,
        headers: Headers = None,
        last_event_id: Any = FROM_REQUEST,
        retry_ms: Optional[int] = None,
        chunk_size: int = DEFAULT_CHUNK,
        on_client: Optional[Callable[[int], Any]] = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.engine = engine
        self.channels = channels
        self.user = user
        self.metadata = metadata
        self.last_event_id = last_event_id
        self.retry_ms = retry_ms
        self.chunk_size = chunk_size
        self.on_client = on_client
        self.extra_headers: List[Tuple[str, str]] = _headers(headers)
        self.client_id: Optional[int] = None
        # What Starlette's Response users may look at.
        self.status_code = 200
        self.background = None
        self.body = b""
        # The engine's stream head, checked here: a bad header fails at construction,
        # before a client is registered.
        self.raw_headers = _raw(stream_head(self.extra_headers)[2])

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") != "http":
            raise RuntimeError("EventStream serves HTTP requests only")
        engine = self.engine
        last_event_id = self.last_event_id
        if last_event_id is FROM_REQUEST:
            last_event_id = last_event_id_of(scope)
        http2 = scope.get("http_version") == "2"
        raw_headers = _raw(stream_head(self.extra_headers, True)[2]) if http2 else self.raw_headers
        try:
            client = engine.connect_stream(
                channels=self.channels,
                user=self.user,
                metadata=self.metadata,
                last_event_id=last_event_id,
                retry_ms=self.retry_ms,
            )
        except LimitReachedError:
            # A closed engine is not "busy": EngineClosedError reaches the app.
            await _refuse(send, engine.config()["busy_retry_after"], http2)
            return
        self.client_id = client
        loop = asyncio.get_running_loop()
        waiter = engine._watch_stream(client, loop)
        gone = False  # the engine ended the client (or closed)
        watcher: Optional[asyncio.Task] = None
        try:
            if self.on_client is not None:
                self.on_client(client)
            await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
            watcher = loop.create_task(_watch_disconnect(receive, waiter))
            chunk = self.chunk_size
            while not watcher.done():
                waiter.event.clear()
                try:
                    data = engine.take_stream(client, chunk)
                except EngineClosedError:
                    data = None
                if data is None:
                    gone = True
                    break
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                    if len(data) == chunk:
                        continue  # more may be queued: take again at once
                await waiter.event.wait()
        except OSError:
            pass  # the client went away while we were writing
        finally:
            engine._unwatch_stream(client)
            if watcher is not None:
                watcher.cancel()
            if not gone:
                try:
                    engine.close_stream(client)
                except EngineClosedError:
                    pass
        if gone:
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass


async def _watch_disconnect(receive: Callable[..., Any], waiter: Any) -> None:
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            waiter.event.set()
            return


def _raw(headers: List[Tuple[str, str]]) -> List[Tuple[bytes, bytes]]:
    """Headers as an ASGI message carries them (lower-case names, bytes)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def _refuse(send: Callable[..., Any], retry_after: int, http2: bool) -> None:
    """Writes the engine's 503 answer to a hand-over refused by a limit."""
    status, _, headers, body = busy_answer(retry_after, http2)
    await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
    await send({"type": "http.response.body", "body": body})


_close_at_server_exit: "weakref.WeakKeyDictionary[Engine, float]" = weakref.WeakKeyDictionary()
_uvicorn_patched = False


def close_on_server_exit(engine: Engine, timeout: float = 1.0) -> None:
    """Closes ``engine`` as soon as uvicorn is asked to stop (SIGINT/SIGTERM).

    uvicorn waits for every open response before it runs the lifespan shutdown, and an
    event stream stays open as long as its client does: closing the engine at once ends
    every stream (the clients get what was queued, then the disconnect reason
    ``shutdown``), so the server exits promptly. The close runs on a thread of its own,
    so the event loop keeps writing the last bytes meanwhile. Without uvicorn this only
    records the engine. (hypercorn cancels open responses after its
    ``graceful_timeout``; uvicorn's ``--timeout-graceful-shutdown`` does the same.)
    """
    global _uvicorn_patched
    _close_at_server_exit[engine] = float(timeout)
    if _uvicorn_patched:
        return
    try:
        from uvicorn.server import Server
    except ImportError:
        return
    original = Server.handle_exit

    def handle_exit(self: Any, sig: int, frame: Any) -> None:
        for eng, eng_timeout in list(_close_at_server_exit.items()):
            if not eng.closed:
                threading.Thread(
                    target=eng.close, args=(eng_timeout,), name="sse-engine-close", daemon=True
                ).start()
        original(self, sig, frame)

    Server.handle_exit = handle_exit  # type: ignore[method-assign]
    _uvicorn_patched = True
