"""Pieces the integrations share."""

from __future__ import annotations

from typing import List, Optional, Tuple
from urllib.parse import parse_qs

__all__ = ["SSE_HEADERS", "resume_id", "FROM_REQUEST"]

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
