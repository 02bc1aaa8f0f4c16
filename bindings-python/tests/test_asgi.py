"""Stream mode under a real ASGI server (uvicorn in this process, Starlette app): the
engine drives the client, the server writes the bytes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import httpx
import httpx_sse
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import sse_engine
from conftest import RawClient, free_port, wait_for
from sse_engine.integrations import resume_id
from sse_engine.integrations.asgi import EventStream, last_event_id_of


@contextlib.contextmanager
def uvicorn_serving(app):
    """A uvicorn server of ``app`` on a free port, in a thread; yields the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "uvicorn did not stop"


def raw_answer(port: int, path: str) -> bytes:
    """Everything the server sends for a GET of ``path`` until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk


@pytest.fixture
def served():
    """(engine, port, events seen by callbacks, client ids by request)."""
    seen = []
    engine = sse_engine.Engine(heartbeat=None, on_connect=lambda c: seen.append(("connect", c)),
                               on_disconnect=lambda c, r: seen.append(("disconnect", c, r)))
    ids = []

    async def events(request):
        q = request.query_params
        return EventStream(engine, channels=q.get("channel", "news"), user=q.get("user"),
                           metadata={"plan": q.get("plan", "free")}, on_client=ids.append)

    async def ok(request):
        return PlainTextResponse("ok")

    async def with_headers(request):
        return EventStream(engine, channels="h", on_client=ids.append, headers=[
            ("Content-Type", "text/html"), ("X-Extra", "e"), ("Cache-Control", "private"),
            ("Connection", "upgrade"),
        ])

    app = Starlette(routes=[Route("/events", events), Route("/ok", ok), Route("/headers", with_headers)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
    yield engine, port, seen, ids
    engine.close()
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive(), "uvicorn did not stop"


def test_stream_mode_same_api(served):
    engine, port, seen, ids = served
    with httpx.Client(timeout=5) as client:
        with httpx_sse.connect_sse(client, "GET", f"http://127.0.0.1:{port}/events?channel=a&user=u1&plan=pro") as source:
            events = source.iter_sse()
            [cid] = ids
            info = engine.get_client(cid)
            assert info["user"] == "u1" and info["channels"] == ["a"] and info["metadata"] == {"plan": "pro"}
            assert info["remote_addr"] is None  # stream mode: the engine has no socket
            assert engine.send(cid, "direct", event="hello")
            assert engine.send_to_user("u1", {"to": "user"}) == 1
            assert engine.broadcast("a", "channel", id="c1") == 1
            assert engine.broadcast_where("a", {"plan": "free"}, "not for pro") == 1
            assert engine.broadcast_all("everyone") == 1
            got = [next(events) for _ in range(4)]
            assert [(e.event, e.data) for e in got] == [
                ("hello", "direct"), ("message", '{"to": "user"}'), ("message", "channel"),
                ("message", "everyone"),
            ]
            assert got[2].id == "c1"
            assert engine.subscribe(cid, "b")
            engine.broadcast("b", "joined b")
            assert next(events).data == "joined b"
    wait_for(lambda: ("disconnect", cid, "closed") in seen, what="the client to be seen leaving")
    assert ("connect", cid) in seen


def test_engine_ends_the_response(served):
    engine, port, seen, ids = served
    raw = RawClient.get(port, "/events?channel=end")
    raw.read_head()
    wait_for(lambda: ids, what="the client id")
    engine.broadcast("end", "before")
    assert engine.disconnect(ids[0])
    raw.wait_eof()
    assert [e["data"] for e in raw.parser.events] == ["before"]
    assert raw.parser.chunked_done  # a complete response: the zero-length last chunk
    wait_for(lambda: ("disconnect", ids[0], "server") in seen, what="on_disconnect")


def test_many_stream_clients_and_replay(served):
    engine, port, seen, ids = served
    for i in range(3):
        engine.broadcast("r", f"old{i}", id=f"o{i}")
    clients = [RawClient.get(port, "/events?channel=r", headers={"Last-Event-ID": "o0"}) for _ in range(30)]
    for c in clients:
        c.read_head()
    wait_for(lambda: len(ids) == 30, what="30 clients")
    for i in range(50):
        engine.broadcast("r", f"live{i}")
    for c in clients:
        data = [e["data"] for e in c.read_events(52)]
        assert data == ["old1", "old2"] + [f"live{i}" for i in range(50)]
        c.close()


def test_close_ends_every_stream(served):
    engine, port, seen, ids = served
    clients = [RawClient.get(port, "/events?channel=z") for _ in range(5)]
    for c in clients:
        c.read_head()
    wait_for(lambda: len(ids) == 5, what="5 clients")
    engine.broadcast("z", "last")
    started = time.monotonic()
    engine.close(timeout=2)
    for c in clients:
        c.wait_eof()
        assert [e["data"] for e in c.parser.events] == ["last"]
    assert time.monotonic() - started < 3
    # A new request after close: an error rather than a hang. A closed engine is not
    # "busy": EngineClosedError reaches the app (Starlette answers 500), no 503.
    raw = RawClient.get(port, "/events")
    assert raw.read_head().startswith(b"HTTP/1.1 500")


def test_stream_head_is_the_engine_head(served):
    """The stream-mode head over HTTP/1.1 has the engine's SSE headers, with
    ``Connection: keep-alive`` (the Python copy had none)."""
    engine, port, seen, ids = served
    raw = RawClient.get(port, "/events?channel=head")
    head = raw.read_head().decode("latin-1").lower()
    status, reason, headers, _ = sse_engine._native.stream_head([], False)
    assert head.startswith(f"http/1.1 {status} {reason}".lower())
    for name, value in headers:
        assert f"\r\n{name.lower()}: {value}\r\n" in head, name
    assert "\r\nconnection: keep-alive\r\n" in head
    raw.close()


def test_stream_mode_extra_headers_filtered_and_validated(served):
    """Extra headers that repeat the engine's are dropped (the engine's values win);
    the rest go out; a bad one fails when the response is made, before any client."""
    engine, port, seen, ids = served
    raw = RawClient.get(port, "/headers")
    head = raw.read_head().decode("latin-1").lower()
    assert head.count("\r\ncontent-type:") == 1 and "\r\ncontent-type: text/event-stream\r\n" in head
    assert head.count("\r\ncache-control:") == 1 and "\r\ncache-control: no-cache\r\n" in head
    assert head.count("\r\nconnection:") == 1 and "\r\nconnection: keep-alive\r\n" in head
    assert "\r\nx-extra: e\r\n" in head
    raw.close()
    before = engine.stats()["connections_total"]
    for bad in ([("X-A", "a\r\nInjected: 1")], [("Bad Name", "v")], [("X-A", "a\x00b")]):
        with pytest.raises(ValueError):
            EventStream(engine, headers=bad)
    assert engine.stats()["connections_total"] == before


def test_limit_refusal_is_the_engine_503():
    """The stream-mode 503 is the engine's answer: its text, ``Retry-After``,
    ``Cache-Control: no-cache`` and ``Connection: close`` (the Python copy added the
    error's text and had neither header)."""
    engine = sse_engine.Engine(heartbeat=None, max_clients=0, busy_retry_after=6)

    async def events(request):
        return EventStream(engine, channels="full")

    try:
        with uvicorn_serving(Starlette(routes=[Route("/events", events)])) as port:
            answer = raw_answer(port, "/events")
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").lower().split("\r\n")
        assert lines[0] == "http/1.1 503 service unavailable"
        assert "retry-after: 6" in lines
        assert "cache-control: no-cache" in lines
        assert "connection: close" in lines
        assert "content-type: text/plain; charset=utf-8" in lines
        assert body == b"the server is at capacity, retry later\n"
        assert body == sse_engine._native.busy_answer(6, False)[3].encode()
        assert engine.stats()["refused_total"] == 1
    finally:
        engine.close()


def test_last_event_id_rule():
    """The header wins; else the query's FIRST lastEventId (the Python copy took the
    last); trimmed (the Python copy did not trim the query); empty means none."""
    assert resume_id(None, "lastEventId=a&lastEventId=b") == "a"
    assert resume_id(None, "lastEventId=%20a%09") == "a"
    assert resume_id(" h ", "lastEventId=q") == "h"
    assert resume_id(" ", "lastEventId=q") == "q"
    assert resume_id("", "") is None
    assert resume_id(None, "lastEventId=") is None
    scope = {"headers": [(b"accept", b"text/event-stream")], "query_string": b"lastEventId=x+1&lastEventId=y"}
    assert last_event_id_of(scope) == "x 1"


def test_last_event_id_from_the_query_replays_from_the_first_value(served):
    engine, port, seen, ids = served
    for i in range(3):
        engine.broadcast("q", f"old{i}", id=f"q{i}")
    raw = RawClient.get(port, "/events?channel=q&lastEventId=%20q0%20&lastEventId=q1")
    raw.read_head()
    assert [e["data"] for e in raw.read_events(2)] == ["old1", "old2"]
    raw.close()
