"""Pieces the integrations share."""

from __future__ import annotations

import os
from typing import Any, List, Optional, Tuple

from .. import _native
from .._native import LimitReachedError

__all__ = ["SSE_HEADERS", "resume_id", "stream_head", "busy_answer", "FROM_REQUEST", "connect_dup"]

# Every HTTP rule here is the engine's (``sse_engine::http``): the heads, the 503 answer,
# which headers may be added, where ``Last-Event-ID`` comes from.

#: Response headers of an event stream over HTTP/1.1 (what the engine writes itself on
#: a handed-over socket), from the engine.
SSE_HEADERS: List[Tuple[str, str]] = _native.stream_head([], False)[2]


def stream_head(headers: List[Tuple[str, str]], http2: bool = False) -> Tuple[int, str, List[Tuple[str, str]]]:
    """Stream mode: ``(status, reason, headers)`` of the response head the server writes:
    200, the SSE headers (no ``Connection`` over HTTP/2), then ``headers`` without the
    engine's own (and, over HTTP/2, without connection-specific ones), each checked
    (``ValueError`` for a bad name or a control character in a value)."""
    status, reason, head, _ = _native.stream_head(headers, http2)
    return status, reason, head


def busy_answer(retry_after_secs: int, http2: bool = False) -> Tuple[int, str, List[Tuple[str, str]], bytes]:
    """``(status, reason, headers, body)`` of the engine's 503 answer to a hand-over
    refused by a limit (the same answer the engine writes on a refused socket)."""
    status, reason, headers, body = _native.busy_answer(retry_after_secs, http2)
    return status, reason, headers, body.encode()


class _FromRequest:
    def __repr__(self) -> str:
        return "FROM_REQUEST"


#: Default of ``last_event_id`` in the helpers: read it from the request.
FROM_REQUEST = _FromRequest()


def resume_id(header: Optional[str], query_string: str = "") -> Optional[str]:
    """The ``Last-Event-ID`` of an SSE request, by the engine's rule: the header (sent on
    reconnects) wins; else the first ``lastEventId`` query parameter (what a page passes
    on its first connection); surrounding ASCII whitespace is trimmed; empty means none."""
    return _native.last_event_id(header, query_string or None)


def connect_dup(engine: Any, fileno: int, **options: Any) -> Optional[int]:
    """Hands a ``dup()`` of the server's descriptor to the engine; the server then closes
    its own descriptor (without ``shutdown``). Returns the client id, or ``None`` when a
    limit refused the client (the engine answered 503). The duplicate is closed when the
    engine gave it back (``fd_taken`` false) and the error raised: the server still owns
    the connection and can answer."""
    fd = os.dup(fileno)
    try:
        return engine.connect(fd, **options)
    except BaseException as e:
        if not getattr(e, "fd_taken", False):
            os.close(fd)  # the engine gave it back: the duplicate is ours to close
        if isinstance(e, LimitReachedError):
            return None
        raise
