"""Type stubs of the native module (PyO3). Use the ``sse_engine`` package, not this.

Every argument is converted with an error that names it: an ``int`` out of the range of
its Rust type (``client``, ``retry_ms``, ``max_bytes``, ``history_size``, ``fd``, the
integer options of ``NativeEngine(...)``) raises ``ValueError`` (never
``OverflowError``), a number of seconds (``timeout``, ``history_age``, ``heartbeat``...)
must be a non-negative finite ``int`` or ``float`` (else ``ValueError``), text that is
not valid UTF-8 (a lone surrogate) in an option raises ``ValueError``, and a value of
the wrong type raises ``TypeError``.
"""

from typing import Any, Dict, List, Optional, Tuple

ENGINE_VERSION: str
DISCONNECT_REASONS: List[str]
#: Response headers the engine writes itself (lower case).
ENGINE_HEADERS: List[str]

#: (status, reason, headers, body) of a response the engine's HTTP rules make.
_HttpResponse = Tuple[int, str, List[Tuple[str, str]], str]

def stream_head(headers: List[Tuple[str, str]], http2: bool) -> _HttpResponse:
    """Stream mode: status 200, the SSE headers (no ``Connection`` over HTTP/2), then
    ``headers`` without the engine's own (and HTTP/2's connection-specific ones), each
    checked (``ValueError``)."""

def busy_answer(retry_after_secs: int, http2: bool) -> _HttpResponse:
    """The 503 answer to a hand-over refused by a limit."""

def schema() -> Dict[str, List[Dict[str, Any]]]:
    """The engine's settings and counters, declared once (``sse_engine::schema``):
    ``{"config": [...], "stats": [...]}``, each field a dict ``name``, ``kind``,
    ``unit``, ``default``, ``off``, ``doc`` with the engine's names."""

def last_event_id(header: Optional[str], query: Optional[str]) -> Optional[str]:
    """The header wins; else the query's first ``lastEventId``; trimmed; empty: None."""

class EngineClosedError(RuntimeError):
    """The engine is closed (or closing): it takes no more calls."""

class LimitReachedError(RuntimeError):
    """A configured limit (max_clients, max_clients_per_channel) refused the request."""

class ClientNotFoundError(LookupError):
    """No client with that id is connected."""

_LastEvent = Tuple[str, Optional[str], Optional[str], Optional[int]]
_Lifecycle = Tuple[str, int, Optional[str]]

class NativeEngine:
    def __init__(self, **options: Any) -> None: ...
    def connect_fd(
        self,
        fd: int,
        channels: List[str],
        user: Optional[str],
        metadata: Optional[str],
        headers: List[Tuple[str, str]],
        last_event_id: Optional[str],
        retry_ms: Optional[int],
        head_sent: bool,
    ) -> int: ...
    def connect_stream(
        self,
        channels: List[str],
        user: Optional[str],
        metadata: Optional[str],
        last_event_id: Optional[str],
        retry_ms: Optional[int],
    ) -> int: ...
    def take_stream(self, client: int, max_bytes: int) -> Optional[bytes]: ...
    def close_stream(self, client: int) -> bool: ...
    def send(
        self, client: int, data: str, event_name: Optional[str], id: Optional[str], retry_ms: Optional[int]
    ) -> bool: ...
    def send_to_user(
        self, user: str, data: str, event_name: Optional[str], id: Optional[str], retry_ms: Optional[int]
    ) -> int: ...
    def broadcast(
        self, channel: str, data: str, event_name: Optional[str], id: Optional[str], retry_ms: Optional[int]
    ) -> int: ...
    def broadcast_many(
        self, items: List[Tuple[str, str, Optional[str], Optional[str], Optional[int]]]
    ) -> int: ...
    def broadcast_all(
        self, data: str, event_name: Optional[str], id: Optional[str], retry_ms: Optional[int]
    ) -> int: ...
    def broadcast_where(
        self,
        channel: str,
        filter: str,
        data: str,
        event_name: Optional[str],
        id: Optional[str],
        retry_ms: Optional[int],
    ) -> int: ...
    def subscribe(self, client: int, channel: str) -> bool: ...
    def unsubscribe(self, client: int, channel: str) -> bool: ...
    def disconnect(self, client: int) -> bool: ...
    def set_metadata(self, client: int, metadata: Optional[str]) -> bool: ...
    def get_client(self, client: int) -> Optional[Dict[str, Any]]: ...
    def clients(self) -> List[Dict[str, Any]]: ...
    def clients_in(self, channel: str) -> List[Dict[str, Any]]: ...
    def clients_of(self, user: str) -> List[Dict[str, Any]]: ...
    def channels(self) -> List[Dict[str, Any]]: ...
    def client_count(self) -> int: ...
    def channel_count(self, channel: str) -> int: ...
    def user_count(self, user: str) -> int: ...
    def close_channel(self, channel: str, disconnect: bool) -> int: ...
    def remove_empty_channels(self) -> int: ...
    def configure_channel(self, channel: str, history_size: int, history_age: float) -> None:
        """``ValueError`` for a negative ``history_size`` or ``history_age``."""
    def config(self) -> Dict[str, Any]: ...
    def stats(self) -> Dict[str, Any]: ...
    def metrics(self) -> str: ...
    def enable_events(self) -> None: ...
    def next_events(self, timeout: float) -> Optional[List[_Lifecycle]]: ...
    def forget_after_fork(self) -> None: ...
    def begin_shutdown(self, timeout: float, last: Optional[_LastEvent] = None) -> None:
        """Validates ``timeout`` and ``last`` (``ValueError``/``TypeError``: nothing is
        closed), then begins the shutdown and returns at once."""
    def wait_shutdown(self, timeout: Optional[float]) -> bool:
        """Waits at most ``timeout`` seconds (``None``: until done) for a begun
        shutdown; True once the engine's threads stopped."""
    def is_connected(self, client: int) -> bool: ...
