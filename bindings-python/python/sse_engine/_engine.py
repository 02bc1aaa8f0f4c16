"""The Pythonic engine: values in, values out; the work happens in the native engine."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import logging
import os
import threading
import weakref
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    TypedDict,
    Union,
    cast,
)

from . import _handover
from ._native import (
    ClientNotFoundError,
    EngineClosedError,
    LimitReachedError,
    NativeEngine,
)

__all__ = ["Engine", "EngineConfig", "Stats", "DEFAULT_CLOSE_TIMEOUT"]

logger = logging.getLogger("sse_engine")

#: Seconds ``close()`` (and interpreter exit) lets queued bytes drain by default.
DEFAULT_CLOSE_TIMEOUT = 1.0
#: How long the dispatcher thread waits for events before it looks around again.
_POLL_SECONDS = 0.5

_CALLBACK_KINDS = ("connect", "disconnect", "gap")

Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]


class EngineConfig(TypedDict):
    """What :meth:`Engine.config` returns: every option of ``Engine()`` (its docstring
    says what each is), ``None`` where a setting is unset."""

    threads: int
    heartbeat: Optional[float]
    retry_ms: Optional[int]
    max_queue_bytes: int
    max_clients: Optional[int]
    max_clients_per_channel: Optional[int]
    write_timeout: Optional[float]
    busy_retry_after: int
    auto_ids: bool
    history_size: int
    history_age: float
    max_replay: int
    gap_event: Optional[str]


class Stats(TypedDict):
    """What :meth:`Engine.stats` returns: the engine's counters (README.md's counters
    table says what each is); ``disconnects`` maps each reason of
    :data:`DISCONNECT_REASONS` to its count."""

    connections_open: int
    connections_total: int
    refused_total: int
    disconnects: Dict[str, int]
    events_published: int
    frames_queued: int
    bytes_written: int
    write_calls: int
    heartbeats: int
    queue_high_water: int
    events_replayed: int
    gaps: int
    reactor_failures: int


# Engines still open, closed at interpreter exit (before daemon threads are frozen).
_open_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _channels(channels: Union[str, Iterable[str], None]) -> List[str]:
    if channels is None:
        return []
    if isinstance(channels, str):
        return [channels]
    return list(channels)


def _headers(headers: Headers) -> List[Tuple[str, str]]:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for item in items:
        name, value = item
        out.append((name, value))
    return out


def _json_object(value: Any, what: str) -> Optional[str]:
    """A dict (or JSON text) for metadata and filters, as JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict (or JSON object text), not {type(value).__name__}")
    return json.dumps(value)


# The keys of an item of ``Engine.broadcast_many``.
_PUBLISH_KEYS = frozenset({"channel", "data", "event", "id", "retry_ms"})


def _event_id(id: Any) -> Optional[str]:
    if id is None or isinstance(id, str):
        return id
    if isinstance(id, int) and not isinstance(id, bool):
        return str(id)
    raise TypeError(f"id must be a str (or int), not {type(id).__name__}")


def _nothing() -> None:
    pass


def _run_callback(kind: str, callback: Callable[..., Any], args: tuple) -> None:
    """Runs one lifecycle callback. Whatever it raises, ``SystemExit`` and
    ``KeyboardInterrupt`` included, is logged and goes no further: the thread (or event
    loop) that runs the callbacks goes on, and nothing is raised in another thread."""
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                if inspect.iscoroutine(result):
                    result.close()
                logger.error(
                    "on_%s returned an awaitable but no event loop runs the callbacks: "
                    "pass callback_loop=... to Engine",
                    kind,
                )
                return
            asyncio.ensure_future(_guarded(kind, result, args[0]), loop=loop)
    except BaseException:
        logger.exception("sse_engine: the on_%s callback raised (client %s)", kind, args[0])


async def _guarded(kind: str, awaitable: Any, client: int) -> None:
    """Awaits a coroutine callback; what it raises is logged like a plain callback's
    (a task that raised ``SystemExit`` or ``KeyboardInterrupt`` would stop the loop)."""
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException:
        logger.exception("sse_engine: the on_%s callback raised (client %s)", kind, client)


class _StreamWaiter:
    """Wakes the coroutine that writes a stream-mode client (ASGI) on its event loop."""

    __slots__ = ("loop", "event", "ended")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self.ended: Optional[str] = None

    def wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


class Engine:
    """A running SSE engine.

    Engine options, keywords shown with their defaults (an option left out keeps it).
    Durations are seconds (``int`` or ``float``), except ``retry_ms``, in milliseconds;
    ``None`` leaves a setting unset where it may be:

    - ``threads=1``: reactor threads (at most 64); clients are spread over them.
    - ``heartbeat=15``: seconds between the comment lines sent to a client that got
      nothing meanwhile; ``None``: no heartbeats.
    - ``retry_ms=None``: ``retry:`` hint sent to every client right after connecting,
      in milliseconds; ``None``: no hint.
    - ``max_queue_bytes=1048576``: bytes a client may have queued (at least 1024); past
      it the client is dropped as ``slow``.
    - ``max_clients=None``: most clients at once; beyond it a hand-over is refused
      (503); ``None``: no limit.
    - ``max_clients_per_channel=None``: most clients in one channel; ``None``: no limit.
    - ``write_timeout=30``: a client with queued bytes that accepts none this long is
      dropped as ``timeout`` (also TCP_USER_TIMEOUT and keepalive); ``None``: never.
    - ``busy_retry_after=5``: seconds in the ``Retry-After`` of the 503 answer.
    - ``auto_ids=True``: give channel and broadcast-to-all events an engine id when
      they have none.
    - ``history_size=1000``: events kept per channel for replay; 0 turns history off.
    - ``history_age=300``: seconds after which history events are dropped; 0 turns
      history off.
    - ``max_replay=1000``: most events replayed to a reconnecting client at once.
    - ``gap_event="sse-gap"``: event sent to a client whose Last-Event-ID is not in
      history; ``None``: none.

    :meth:`config` gives them back as they are in force (``Engine(**e.config())`` makes
    the same engine); an unknown option is a ``TypeError``.

    Python options: ``serializer`` turns non-``str`` data into text (default
    ``json.dumps``); ``on_connect(client)``, ``on_disconnect(client, reason)``,
    ``on_gap(client)`` are lifecycle callbacks, run on a thread the binding owns,
    holding the GIL; with ``callback_loop`` they run on that asyncio loop instead
    (``call_soon_threadsafe``; a coroutine callback becomes a task). An exception in a
    callback is logged (logger ``sse_engine``) and never stops the engine, nor the
    thread or loop that runs the callbacks: ``SystemExit`` and ``KeyboardInterrupt``
    included, which are logged and not raised again anywhere.

    An integer argument out of range (negative, or too large) raises ``ValueError``
    naming the argument, never ``OverflowError``.

    Use it as a context manager, or call :meth:`close`. One engine per process: create
    it after forking (in each gunicorn worker, not in the master).
    """

    def __init__(
        self,
        *,
        serializer: Callable[[Any], Union[str, bytes]] = json.dumps,
        on_connect: Optional[Callable[[int], Any]] = None,
        on_disconnect: Optional[Callable[[int, str], Any]] = None,
        on_gap: Optional[Callable[[int], Any]] = None,
        callback_loop: Optional[asyncio.AbstractEventLoop] = None,
        **options: Any,
    ) -> None:
        if not callable(serializer):
            raise TypeError("serializer must be callable")
        self._native = NativeEngine(**options)
        self._pid = os.getpid()
        self._serializer = serializer
        self._callbacks: Dict[str, Optional[Callable[..., Any]]] = {
            "connect": None,
            "disconnect": None,
            "gap": None,
        }
        self._callback_loop = callback_loop
        self._streams: Dict[int, _StreamWaiter] = {}
        self._lock = threading.Lock()
        self._dispatcher: Optional[threading.Thread] = None
        self._closed = False
        _open_engines.add(self)
        for kind, callback in (("connect", on_connect), ("disconnect", on_disconnect), ("gap", on_gap)):
            if callback is not None:
                self._set_callback(kind, callback)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<sse_engine.Engine {state}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` shut the engine down (also when it was interrupted)."""
        return self._closed

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT, *, last_event: Any = None,
              last_event_name: Optional[str] = None, last_event_id: Optional[str] = None) -> None:
        """Stops taking clients, optionally sends ``last_event`` (data) to everyone,
        lets queued bytes drain for up to ``timeout`` seconds, then closes every client
        (reason ``shutdown``) and stops the engine's threads. The lifecycle callbacks
        of those last disconnects have run when it returns (unless it is called from a
        callback). Closing twice does nothing. An exception raised while it waits (a
        ``KeyboardInterrupt``) goes to the caller; :attr:`closed` then says whether the
        engine shut down (it does once the wait began: the engine finishes closing on
        its own threads)."""
        if self._closed:
            return
        last = None
        if last_event is not None:  # checked before anything closes
            last = (self._text(last_event), last_event_name, _event_id(last_event_id), None)
        native = self._n()
        # Marked closed before the engine shuts down, so that an interrupt (Ctrl-C)
        # arriving right after the shutdown began leaves the flag set.
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _open_engines.discard(self)
        try:
            native.begin_shutdown(timeout, last)
        except EngineClosedError:
            pass
        except BaseException:
            # A bad argument (timeout, last event) closes nothing; a KeyboardInterrupt
            # may come before the engine started shutting down or just after: the
            # engine tells which, and the flag follows it. The exception goes to the
            # caller.
            if not _engine_stopped(native):
                with self._lock:
                    self._closed = False
                _open_engines.add(self)
            raise
        # In short waits, so that a signal handler (Ctrl-C) runs meanwhile.
        while not native.wait_shutdown(_WAIT_SLICE):
            pass
        dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher is not threading.current_thread():
            dispatcher.join(timeout=float(timeout) + 5.0)

    def _n(self) -> NativeEngine:
        if self._pid != os.getpid():
            raise RuntimeError(
                "this Engine was created in another process (before a fork): its threads "
                "do not exist here; create the engine in the worker process"
            )
        return self._native

    # ------------------------------------------------------------------ callbacks

    @property
    def on_connect(self) -> Optional[Callable[[int], Any]]:
        return self._callbacks["connect"]

    @on_connect.setter
    def on_connect(self, callback: Optional[Callable[[int], Any]]) -> None:
        self._set_callback("connect", callback)

    @property
    def on_disconnect(self) -> Optional[Callable[[int, str], Any]]:
        return self._callbacks["disconnect"]

    @on_disconnect.setter
    def on_disconnect(self, callback: Optional[Callable[[int, str], Any]]) -> None:
        self._set_callback("disconnect", callback)

    @property
    def on_gap(self) -> Optional[Callable[[int], Any]]:
        return self._callbacks["gap"]

    @on_gap.setter
    def on_gap(self, callback: Optional[Callable[[int], Any]]) -> None:
        self._set_callback("gap", callback)

    @property
    def callback_loop(self) -> Optional[asyncio.AbstractEventLoop]:
        return self._callback_loop

    @callback_loop.setter
    def callback_loop(self, loop: Optional[asyncio.AbstractEventLoop]) -> None:
        self._callback_loop = loop

    def on(self, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form: ``@engine.on("disconnect")``."""
        if kind not in _CALLBACK_KINDS:
            raise ValueError(f"unknown lifecycle event {kind!r} (connect, disconnect, gap)")

        def register(callback: Callable[..., Any]) -> Callable[..., Any]:
            self._set_callback(kind, callback)
            return callback

        return register

    def _set_callback(self, kind: str, callback: Optional[Callable[..., Any]]) -> None:
        if kind not in _CALLBACK_KINDS:
            raise ValueError(f"unknown lifecycle event {kind!r} (connect, disconnect, gap)")
        if callback is not None and not callable(callback):
            raise TypeError(f"on_{kind} must be callable or None")
        self._callbacks[kind] = callback
        if callback is not None:
            self._start_events()

    def _start_events(self) -> None:
        """Installs the engine's lifecycle handler and starts the dispatcher thread (once)."""
        with self._lock:
            if self._dispatcher is not None:
                return
            native = self._n()
            native.enable_events()
            thread = threading.Thread(
                target=_dispatch_loop,
                args=(native, weakref.ref(self)),
                name="sse-engine-callbacks",
                daemon=True,
            )
            self._dispatcher = thread
            thread.start()

    def _dispatch(self, batch: List[Tuple[str, int, Optional[str]]]) -> None:
        streams = self._streams
        for kind, client, reason in batch:
            if kind == "readable":
                waiter = streams.get(client)
                if waiter is not None:
                    waiter.wake()
                continue
            if kind == "disconnect":
                waiter = streams.get(client)
                if waiter is not None:
                    waiter.ended = reason
                    waiter.wake()
            callback = self._callbacks.get(kind)
            if callback is None:
                continue
            args = (client, reason) if kind == "disconnect" else (client,)
            loop = self._callback_loop
            if loop is None:
                _run_callback(kind, callback, args)
            else:
                try:
                    loop.call_soon_threadsafe(_run_callback, kind, callback, args)
                except RuntimeError:
                    logger.warning("sse_engine: callback_loop is closed; on_%s not delivered", kind)

    # ------------------------------------------------------------------ values

    def _text(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data).decode("utf-8")
        out = self._serializer(data)
        if isinstance(out, (bytes, bytearray)):
            out = bytes(out).decode("utf-8")
        if not isinstance(out, str):
            raise TypeError(f"the serializer returned {type(out).__name__}, not str or bytes")
        return out

    # ------------------------------------------------------------------ hand-over

    def connect(
        self,
        sock_or_fd: Any,
        *,
        channels: Union[str, Iterable[str], None] = (),
        user: Optional[str] = None,
        metadata: Any = None,
        headers: Headers = None,
        last_event_id: Optional[str] = None,
        retry_ms: Optional[int] = None,
        head_sent: bool = False,
        takeover: str = "detach",
    ) -> int:
        """Hands a connected TCP connection to the engine; returns the client id.

        ``sock_or_fd``: a ``socket.socket`` or an int descriptor. An int passes to the
        engine on success. A refusal's exception says in ``fd_taken`` who has it:
        ``True`` when the engine took it (a limit, :class:`LimitReachedError`: the
        engine answered 503 and closed it), ``False`` when it is untouched and still
        yours. A socket is taken over safely: with ``takeover="detach"`` (default) the
        object is detached and closed; with ``takeover="swap"`` (servers that keep
        using their object) its descriptor now refers to a harmless placeholder. When
        the engine did not take the connection the socket is left as it was: the
        duplicate and the placeholder are made before the engine sees the connection,
        so an ``OSError`` (``EMFILE`` at the descriptor limit) means the engine has no
        client and wrote nothing to it. The engine checks the descriptor (a connected
        TCP socket; else ``ValueError``).

        The engine writes the response head (200, ``text/event-stream`` and
        ``headers``) unless ``head_sent``. ``metadata`` is a dict (JSON object).
        ``last_event_id`` (the request's ``Last-Event-ID``) replays what the client
        missed. Bytes the server already read past the request head stay with it.
        """
        args = (
            _channels(channels),
            user,
            _json_object(metadata, "metadata"),
            _headers(headers),
            last_event_id,
            retry_ms,
            bool(head_sent),
        )
        native = self._n()
        if isinstance(sock_or_fd, int) and not isinstance(sock_or_fd, bool):
            return native.connect_fd(sock_or_fd, *args)
        if takeover not in ("detach", "swap"):
            raise ValueError(f"takeover must be 'detach' or 'swap', not {takeover!r}")
        _handover.check_socket(sock_or_fd)
        # Everything that can fail (the placeholder, the duplicate) happens before the
        # engine sees the connection: on an error the socket is as it was and the engine
        # never registered a client. Releasing the socket afterwards cannot fail.
        if takeover == "swap":
            swap = _handover.prepare_swap(sock_or_fd)
            release: Callable[[Any], None] = swap.release
            cancel: Callable[[], None] = swap.cancel
        else:
            release, cancel = _handover.release_detach, _nothing
        try:
            fd = os.dup(sock_or_fd.fileno())
        except BaseException:
            cancel()
            raise
        try:
            client = native.connect_fd(fd, *args)
        except BaseException as e:
            if getattr(e, "fd_taken", False):
                # The engine took its descriptor (answered 503 and closed it): the
                # connection is gone, so give up ours too.
                release(sock_or_fd)
            else:
                os.close(fd)
                cancel()
            raise
        release(sock_or_fd)
        return client

    # ------------------------------------------------------------------ stream mode

    def connect_stream(
        self,
        *,
        channels: Union[str, Iterable[str], None] = (),
        user: Optional[str] = None,
        metadata: Any = None,
        last_event_id: Optional[str] = None,
        retry_ms: Optional[int] = None,
    ) -> int:
        """Registers a stream-mode client: the engine keeps its state (channels,
        history and replay, heartbeats, limits, timeouts) but the host writes the
        bytes (it writes the response head, takes the bytes with :meth:`take_stream`
        and calls :meth:`close_stream` when the response ends). Used by
        :mod:`sse_engine.integrations.asgi`."""
        return self._n().connect_stream(
            _channels(channels),
            user,
            _json_object(metadata, "metadata"),
            last_event_id,
            retry_ms,
        )

    def take_stream(self, client: int, max_bytes: int = 65536) -> Optional[bytes]:
        """Up to ``max_bytes`` queued for a stream-mode client (``b""`` when none);
        ``None`` once the client is gone."""
        return self._n().take_stream(client, max_bytes)

    def close_stream(self, client: int) -> bool:
        """The response of a stream-mode client ended. False when it is unknown."""
        return self._n().close_stream(client)

    def _watch_stream(self, client: int, loop: asyncio.AbstractEventLoop) -> _StreamWaiter:
        self._start_events()
        waiter = _StreamWaiter(loop)
        self._streams[client] = waiter
        return waiter

    def _unwatch_stream(self, client: int) -> None:
        self._streams.pop(client, None)

    # ------------------------------------------------------------------ sends

    def send(self, client: int, data: Any, *, event: Optional[str] = None,
             id: Any = None, retry_ms: Optional[int] = None) -> bool:
        """Sends an event to one client. False when no such client is connected."""
        return self._n().send(client, self._text(data), event, _event_id(id), retry_ms)

    def send_to_user(self, user: str, data: Any, *, event: Optional[str] = None,
                     id: Any = None, retry_ms: Optional[int] = None) -> int:
        """Sends to every connection of ``user``; returns how many."""
        return self._n().send_to_user(user, self._text(data), event, _event_id(id), retry_ms)

    def broadcast(self, channel: str, data: Any, *, event: Optional[str] = None,
                  id: Any = None, retry_ms: Optional[int] = None) -> int:
        """Sends to every member of ``channel`` (and keeps it in the channel's
        history); returns how many members it was queued for."""
        return self._n().broadcast(channel, self._text(data), event, _event_id(id), retry_ms)

    def broadcast_many(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Publishes many events at once, each a mapping ``{"channel": ..., "data": ...}``
        with optional ``event``, ``id`` and ``retry_ms``: each is a :meth:`broadcast` (ids,
        history, replay), made under one lock and with one wake-up per reactor, in the
        order given. Every item is checked first: if one is bad, the error names it and
        nothing is published. Returns the deliveries queued in all."""
        if isinstance(items, (str, bytes, Mapping)):
            raise TypeError(f"items must be an iterable of mappings, not {type(items).__name__}")
        rows = []
        for index, item in enumerate(items):
            rows.append(self._publish_row(index, item))
        return self._n().broadcast_many(rows)

    def _publish_row(self, index: int, item: Any) -> tuple:
        """One item of :meth:`broadcast_many` as the native tuple."""
        name = f"items[{index}]"
        if not isinstance(item, Mapping):
            raise TypeError(f"{name} must be a mapping with channel and data, not {type(item).__name__}")
        unknown = set(item) - _PUBLISH_KEYS
        if unknown:
            raise ValueError(f"{name} has unknown keys: {', '.join(sorted(map(repr, unknown)))}")
        for key in ("channel", "data"):
            if key not in item:
                raise ValueError(f"{name} has no {key!r}")
        channel = item["channel"]
        if not isinstance(channel, str):
            raise TypeError(f"{name}['channel'] must be a str, not {type(channel).__name__}")
        event = item.get("event")
        if event is not None and not isinstance(event, str):
            raise TypeError(f"{name}['event'] must be a str, not {type(event).__name__}")
        try:
            data = self._text(item["data"])
            event_id = _event_id(item.get("id"))
        except (TypeError, ValueError) as e:
            raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{name}: {e}") from e
        return (channel, data, event, event_id, item.get("retry_ms"))

    def broadcast_all(self, data: Any, *, event: Optional[str] = None,
                      id: Any = None, retry_ms: Optional[int] = None) -> int:
        """Sends to every connected client; returns how many."""
        return self._n().broadcast_all(self._text(data), event, _event_id(id), retry_ms)

    def broadcast_where(self, channel: str, filter: Any, data: Any, *,
                        event: Optional[str] = None, id: Any = None,
                        retry_ms: Optional[int] = None) -> int:
        """Sends to the members of ``channel`` whose metadata matches ``filter``, a
        dict of field equalities where a value may be ``{"$in": [...]}``. Returns the
        number of members the filter is evaluated against."""
        filter_json = _json_object(filter, "filter")
        if filter_json is None:
            raise TypeError("filter must be a dict, not None")
        return self._n().broadcast_where(
            channel, filter_json, self._text(data), event, _event_id(id), retry_ms
        )

    # ------------------------------------------------------------------ membership

    def subscribe(self, client: int, channel: str) -> bool:
        """Adds a client to a channel. False when it already was a member or is unknown."""
        return self._n().subscribe(client, channel)

    def unsubscribe(self, client: int, channel: str) -> bool:
        """Removes a client from a channel. False when it was not a member or is unknown."""
        return self._n().unsubscribe(client, channel)

    def disconnect(self, client: int) -> bool:
        """Closes a client's stream (reason ``server``). False when it is unknown."""
        return self._n().disconnect(client)

    def set_metadata(self, client: int, metadata: Any) -> bool:
        """Replaces a client's metadata (a dict; None clears it). False when unknown."""
        return self._n().set_metadata(client, _json_object(metadata, "metadata"))

    # ------------------------------------------------------------------ registry

    def is_connected(self, client: int) -> bool:
        """Whether ``client`` is connected now (answered at once, from the engine's
        directory: usable from callbacks)."""
        return self._n().is_connected(client)

    def get_client(self, client: int) -> Optional[Dict[str, Any]]:
        """``{"id", "user", "channels", "metadata", "connected_at_ms", "remote_addr",
        "queued_bytes", "last_event_id"}``, or None when it is not connected."""
        return self._n().get_client(client)

    def clients(self) -> List[Dict[str, Any]]:
        """Every connected client (dicts as :meth:`get_client`), by id."""
        return self._n().clients()

    def clients_in(self, channel: str) -> List[Dict[str, Any]]:
        """The members of ``channel``, by id."""
        return self._n().clients_in(channel)

    def clients_of(self, user: str) -> List[Dict[str, Any]]:
        """The connections of ``user``, by id."""
        return self._n().clients_of(user)

    def channels(self) -> List[Dict[str, Any]]:
        """Every channel the engine knows: ``{"name", "members", "history"}``."""
        return self._n().channels()

    def client_count(self) -> int:
        return self._n().client_count()

    def channel_count(self, channel: str) -> int:
        return self._n().channel_count(channel)

    def user_count(self, user: str) -> int:
        return self._n().user_count(user)

    def close_channel(self, channel: str, *, disconnect: bool = False) -> int:
        """Unsubscribes every member (with ``disconnect``, closes them) and forgets the
        channel and its history. Returns how many members it had."""
        return self._n().close_channel(channel, bool(disconnect))

    def remove_empty_channels(self) -> int:
        """Forgets every channel without members. Returns how many."""
        return self._n().remove_empty_channels()

    def configure_channel(self, channel: str, *, history_size: int,
                          history_age: float) -> None:
        """Sets a channel's history bounds (0 turns its history off)."""
        self._n().configure_channel(channel, history_size, history_age)

    def config(self) -> EngineConfig:
        """The options the engine runs with (every option of ``Engine()``, defaults
        filled in, ``None`` where unset; durations in seconds, ``retry_ms`` in ms)."""
        return cast(EngineConfig, self._native.config())

    def stats(self) -> Stats:
        """The engine's counters (``disconnects`` is a dict by reason). Still readable
        after :meth:`close`."""
        return cast(Stats, self._n().stats())

    def metrics(self) -> str:
        """The counters in Prometheus text format (``sse_engine_*``)."""
        return self._n().metrics()


#: Seconds of each wait for a shutdown: signal handlers run between two.
_WAIT_SLICE = 0.1


def _engine_stopped(native: NativeEngine) -> bool:
    """True when the native engine has shut down (it refuses every call)."""
    try:
        native.client_count()
    except EngineClosedError:
        return True
    return False


def _dispatch_loop(native: NativeEngine, engine_ref: "weakref.ref[Engine]") -> None:
    """The dispatcher thread: waits for lifecycle events with the GIL released, then
    runs the callbacks holding it. Ends when the engine stopped (or was collected)."""
    while True:
        try:
            batch = native.next_events(_POLL_SECONDS)
        except Exception:  # pragma: no cover - defensive: never die silently
            logger.exception("sse_engine: reading lifecycle events failed")
            return
        if batch is None:
            return
        engine = engine_ref()
        if engine is None:
            return
        if batch:
            try:
                engine._dispatch(batch)
            except BaseException:  # pragma: no cover - _dispatch logs callback errors itself
                logger.exception("sse_engine: dispatching lifecycle events failed")
        del engine


@atexit.register
def _close_at_exit() -> None:
    """Closes engines still open when the interpreter exits, so the exit neither hangs
    nor finds a thread inside the engine."""
    for engine in list(_open_engines):
        try:
            engine.close(timeout=0.5)
        except Exception:  # pragma: no cover
            logger.exception("sse_engine: closing an engine at exit failed")
    _handover.reap_sinks(close_all=True)


def _after_fork_in_child() -> None:
    # The engine's threads did not come along. The parent's engines must never be shut
    # down or dropped here (that would wait for threads this process does not have):
    # their _n() raises, and the native handle is leaked on purpose.
    for engine in list(_open_engines):
        engine._native.forget_after_fork()
    _open_engines.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
