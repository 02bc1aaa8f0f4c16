"""aiohttp: hand a request's connection to the engine from a handler.

::

    async def events(request):
        return response(request, engine, channels=["news"])

    app.router.add_get("/events", events)

The socket is taken from the transport (``transport.get_extra_info('socket')``): the
engine gets a ``dup()`` of it, then the transport is closed. asyncio closes its own
descriptor without ``shutdown``, so the connection lives on in the engine. The response
the handler returns is never written (the transport is closing); aiohttp logs the
request as served. TLS connections cannot be handed over: use stream mode.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

from .._engine import Engine, Headers
from ._common import FROM_REQUEST, connect_dup, resume_id

__all__ = ["handover", "response"]


def handover(
    request: Any,
    engine: Engine,
    *,
    channels: Union[str, Iterable[str], None] = (),
    user: Optional[str] = None,
    metadata: Any = None,
    headers: Headers = None,
    last_event_id: Any = FROM_REQUEST,
    retry_ms: Optional[int] = None,
) -> Optional[int]:
    """Hands ``request``'s connection (an ``aiohttp.web.Request`` whose response was not
    started) to ``engine``. Returns the client id, or None when a limit refused the
    client (the engine answered 503). On ``ValueError`` (bad options) the connection
    stays with aiohttp, which can still answer."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client is gone: nothing to hand over")
    if transport.get_extra_info("sslcontext") is not None:
        raise TypeError(
            "cannot hand over a TLS connection: the engine writes plain TCP; use stream "
            "mode (sse_engine.integrations.asgi) or terminate TLS in a proxy"
        )
    sock = transport.get_extra_info("socket")
    if sock is None:
        raise RuntimeError("this transport exposes no socket")
    if last_event_id is FROM_REQUEST:
        last_event_id = resume_id(request.headers.get("Last-Event-ID"), request.query_string)
    client = connect_dup(
        engine,
        sock.fileno(),
        channels=channels,
        user=user,
        metadata=metadata,
        headers=headers,
        last_event_id=last_event_id,
        retry_ms=retry_ms,
    )
    # Stops asyncio reading, then closes its descriptor (no shutdown): the engine's
    # duplicate keeps the connection.
    transport.close()
    return client


def response(request: Any, engine: Engine, **options: Any) -> Any:
    """:func:`handover`, then a response object for the handler to return (aiohttp
    needs one; it is not written, as the transport is closed)."""
    from aiohttp import web

    client = handover(request, engine, **options)
    resp = web.Response(status=200 if client is not None else 503)
    return resp
