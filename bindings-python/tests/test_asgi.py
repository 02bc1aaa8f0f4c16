"""Stream mode under a real ASGI server (uvicorn in this process, Starlette app): the
engine drives the client, the server writes the bytes."""

from __future__ import annotations

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
from sse_engine.integrations.asgi import EventStream


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

    app = Starlette(routes=[Route("/events", events), Route("/ok", ok)])
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
    # A new request after close: 503 rather than a hang.
    raw = RawClient.get(port, "/events")
    assert raw.read_head().startswith(b"HTTP/1.1 503")
