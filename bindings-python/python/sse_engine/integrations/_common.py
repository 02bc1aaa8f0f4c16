"""Pieces the integrations share."""

from __future__ import annotations

import os
from typing import Any, List, Optional, Tuple
from urllib.parse import parse_qs

from .._native import LimitReachedError

__all__ = ["SSE_HEADERS", "resume_id", "FROM_REQUEST", "connect_dup"]

#: Response headers of an event stream (what the engine writes itself in raw mode).
SSE_HEADERS: List[Tuple[str, str]] = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]


class _FromRequest:
    def __repr__(self) -> str:
        return "FROM_REQUEST"


#: Default of ``last_event_id`` in the helpers: read it from the request.
FROM_REQUEST = _FromRequest()


def resume_id(header: Optional[str], query_string: str = "") -> Optional[str]:
    """The ``Last-Event-ID`` of an SSE request: the header (sent on reconnects), else a
    ``lastEventId`` query parameter (what a page passes on its first connection)."""
    if header:
        return header.strip()
    if query_string:
        values = parse_qs(query_string, keep_blank_values=False).get("lastEventId")
        if values:
            return values[-1]
    return None


def connect_dup(engine: Any, fileno: int, **options: Any) -> Optional[int]:
    """Hands a ``dup()`` of the server's descriptor to the engine; the server then closes
    its own descriptor (without ``shutdown``). Returns the client id, or ``None`` when a
    limit refused the client (the engine answered 503 and closed its duplicate). On any
    other error the duplicate is closed and the error raised: the server still owns the
    connection and can answer."""
    fd = os.dup(fileno)
    try:
        return engine.connect(fd, **options)
    except LimitReachedError:
        return None
    except BaseException:
        os.close(fd)
        raise
