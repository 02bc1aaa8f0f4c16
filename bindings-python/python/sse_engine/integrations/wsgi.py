"""WSGI: hand the request's connection to the engine, under the werkzeug development
server and gunicorn's ``sync`` and ``gthread`` workers (Flask and any WSGI app).

Plain WSGI::

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/events":
            return respond(environ, start_response, engine, channels=["news"])
        ...

Flask::

    @app.get("/events")
    def events():
        handover(flask.request.environ, engine, channels=["news"])
        return ""  # goes to the placeholder, never to the client

The server's socket object (``environ['gunicorn.socket']`` or
``environ['werkzeug.socket']``) is kept by the server, so the hand-over is the
dup2-swap: the engine owns the connection, and the object now refers to a placeholder.
Whatever the server does afterwards (writing the WSGI response, a chunk terminator,
``shutdown(SHUT_WR)``, keep-alive reads, ``close``) lands on the placeholder, never on
the client's stream: the engine alone writes the response head and the events.

gunicorn: create the engine in each worker (after the fork), for example lazily on the
first request or in a ``post_fork`` hook. Other WSGI servers that expose no socket
(uWSGI, mod_wsgi, waitress) cannot hand over: serve the stream from an ASGI route in
stream mode, or put the SSE endpoint on one of the servers above.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Union

from .._engine import Engine, Headers
from .._native import LimitReachedError
from ._common import FROM_REQUEST, resume_id, stream_head

__all__ = ["handover", "respond", "socket_of", "ENVIRON_KEY"]

#: Where :func:`handover` records the client id in ``environ``.
ENVIRON_KEY = "sse_engine.client"

_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")


def socket_of(environ: dict) -> Any:
    """The server's client socket object, or None when the server exposes none."""
    for key in _SOCKET_KEYS:
        sock = environ.get(key)
        if sock is not None:
            return sock
    return None


def handover(
    environ: dict,
    engine: Engine,
    *,
    channels: Union[str, Iterable[str], None] = (),
    user: Optional[str] = None,
    metadata: Any = None,
    headers: Headers = None,
    last_event_id: Any = FROM_REQUEST,
    retry_ms: Optional[int] = None,
) -> Optional[int]:
    """Hands the request's connection to ``engine`` (nothing may have been written to
    it yet). Returns the client id (also stored in ``environ["sse_engine.client"]``),
    or None when a limit refused the client (the engine answered 503). Whatever the app
    then returns is discarded by the placeholder. Raises ``RuntimeError`` when the
    server exposes no socket, ``ValueError`` for bad options (the connection then stays
    with the server, which can answer 400), ``OSError`` when the hand-over cannot be
    prepared (no descriptor left; the connection is untouched, the server can answer
    503)."""
    sock = socket_of(environ)
    if sock is None:
        raise RuntimeError(
            "this WSGI server exposes no client socket (werkzeug and gunicorn do: "
            "environ['werkzeug.socket'] / environ['gunicorn.socket']); serve the stream "
            "through stream mode (sse_engine.integrations.asgi) instead"
        )
    if last_event_id is FROM_REQUEST:
        last_event_id = resume_id(
            environ.get("HTTP_LAST_EVENT_ID"), environ.get("QUERY_STRING", "")
        )
    try:
        client: Optional[int] = engine.connect(
            sock,
            channels=channels,
            user=user,
            metadata=metadata,
            headers=headers,
            last_event_id=last_event_id,
            retry_ms=retry_ms,
            takeover="swap",
        )
    except LimitReachedError:
        client = None
    environ[ENVIRON_KEY] = client
    return client


def respond(
    environ: dict,
    start_response: Callable[..., Any],
    engine: Engine,
    **options: Any,
) -> List[bytes]:
    """:func:`handover`, then a WSGI response for the server to finish (it goes to the
    placeholder). Return its result from the WSGI app."""
    handover(environ, engine, **options)
    status, reason, headers = stream_head([])
    start_response(f"{status} {reason}", headers)
    return []
