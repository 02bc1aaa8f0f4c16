"""sse_engine: a Server-Sent Events engine in Rust for Python web apps.

Your framework keeps routing, auth and everything else; when a request should become an
event stream, hand the connection over and from then on only send::

    import sse_engine

    engine = sse_engine.Engine(heartbeat=15)  # durations in seconds
    client = engine.connect(sock, channels=["news"], last_event_id=last_id)
    engine.broadcast("news", {"title": "hello"}, event="headline")

The engine owns the socket on its own reactor thread: it writes the stream, sends
heartbeats, replays missed events (``Last-Event-ID``), drops clients that read too
slowly and fans out without the GIL. Framework helpers are in
:mod:`sse_engine.integrations`.
"""

from ._engine import DEFAULT_CLOSE_TIMEOUT, Engine, EngineConfig, Stats
from ._native import (
    DISCONNECT_REASONS,
    ENGINE_VERSION,
    ClientNotFoundError,
    EngineClosedError,
    LimitReachedError,
)

__version__ = ENGINE_VERSION

__all__ = [
    "Engine",
    "EngineConfig",
    "Stats",
    "EngineClosedError",
    "LimitReachedError",
    "ClientNotFoundError",
    "DISCONNECT_REASONS",
    "DEFAULT_CLOSE_TIMEOUT",
    "__version__",
]
