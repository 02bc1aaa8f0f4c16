"""Tornado: hand a request's connection to the engine from a ``RequestHandler``.

::

    class Events(tornado.web.RequestHandler):
        def get(self):
            handover(self, engine, channels=["news"])

The engine takes a duplicate of the connection first (so a bad option leaves the
request with Tornado, which can answer 400), then the handler is detached
(``handler.detach()``: Tornado stops all HTTP processing of the connection) and the
detached ``IOStream`` is closed, which closes Tornado's descriptor without ``shutdown``.
HTTP/1.1 only; TLS connections cannot be handed over (use stream mode).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

from .._engine import Engine, Headers
from ._common import FROM_REQUEST, connect_dup, resume_id

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
    """Hands ``handler``'s connection (nothing written yet) to ``engine``. Returns the
    client id, or None when a limit refused the client (the engine answered 503)."""
    from tornado.iostream import SSLIOStream

    request = handler.request
    connection = request.connection
    stream = getattr(connection, "stream", None)
    if stream is None or not hasattr(connection, "detach"):
        raise RuntimeError("this connection cannot be detached (HTTP/1.1 only)")
    if isinstance(stream, SSLIOStream):
        raise TypeError(
            "cannot hand over a TLS connection: the engine writes plain TCP; terminate "
            "TLS in a proxy"
        )
    if handler._headers_written:
        raise RuntimeError("the response was already started: nothing to hand over")
    if last_event_id is FROM_REQUEST:
        query = request.query
        last_event_id = resume_id(request.headers.get("Last-Event-ID"), query)
    client = connect_dup(
        engine,
        stream.socket.fileno(),
        channels=channels,
        user=user,
        metadata=metadata,
        headers=headers,
        last_event_id=last_event_id,
        retry_ms=retry_ms,
    )
    detached = handler.detach()
    # Removes the descriptor from the IOLoop and closes it (no shutdown).
    detached.close()
    return client
