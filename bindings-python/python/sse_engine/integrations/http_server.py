"""stdlib ``http.server``: hand a request's connection to the engine from a handler.

::

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/events"):
                handover(self, engine, channels=["news"])
                return
            ...

    http.server.ThreadingHTTPServer(("", 8000), Handler).serve_forever()

The engine writes the response head and the stream. The handler's ``connection``
object now refers to a placeholder (dup2-swap), so what the server does with it
afterwards (``shutdown_request``: ``shutdown(SHUT_WR)`` and ``close``) does not reach
the client; the handler is marked ``close_connection``.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union
from urllib.parse import urlsplit

from .._engine import Engine, Headers
from .._native import LimitReachedError
from ._common import FROM_REQUEST, resume_id

__all__ = ["handover"]


def handover(
    handler: Any,
    engine: Engine,
    *,
    channels: Union[str, Iterable[str], None] = (),
    user: Optional[str] = None,
    metadata: Any = None,
    headers: Headers = None,
    last_event_id: Any = FROM_REQUEST,
    retry_ms: Optional[int] = None,
) -> Optional[int]:
    """Hands ``handler``'s connection (a ``BaseHTTPRequestHandler`` that has written
    nothing yet) to ``engine``. Returns the client id, or None when a limit refused
    the client (the engine answered 503 and closed it). Raises ``ValueError`` for bad
    options, leaving the connection with the handler (it can answer 400), and
    ``OSError`` when the hand-over cannot be prepared (no descriptor left): the
    connection is then untouched and still the handler's (it can answer 503)."""
    if last_event_id is FROM_REQUEST:
        last_event_id = resume_id(
            handler.headers.get("Last-Event-ID"), urlsplit(handler.path).query
        )
    handler.wfile.flush()
    try:
        client: Optional[int] = engine.connect(
            handler.connection,
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
    handler.close_connection = True
    return client
