"""Real servers (each examples/python-* app in its own process) and real clients.

For every server: events reach httpx-sse and raw-socket clients, Last-Event-ID replays
(header and query parameter), a client that leaves is detected, the server does not
write to, close or shut down a handed-over stream, and it logs no error.
"""

from __future__ import annotations

import sys
import time
import uuid

import httpx
import httpx_sse
import pytest

from conftest import (
    BIN,
    EXAMPLES,
    RawClient,
    ServerProcess,
    assert_no_errors,
    free_port,
    wait_for,
)

PY = sys.executable
# One worker (one engine); debug logging, so that even a write the server tried on a dead
# socket ("Ignoring EPIPE") would show up in the log check.
GUNICORN = ["-w", "1", "--log-level", "debug", "--access-logfile", "-", "--no-control-socket"]

# name: (argv builder, cwd, stream mode?)
SERVERS = {
    "http.server": (lambda p: [PY, "server.py", str(p)], "python-http-server", False),
    "werkzeug": (lambda p: [PY, "app.py", str(p)], "python-flask", False),
    "gunicorn-sync": (
        lambda p: [str(BIN / "gunicorn"), *GUNICORN, "-b", f"127.0.0.1:{p}", "app:app"],
        "python-flask",
        False,
    ),
    "gunicorn-gthread": (
        lambda p: [str(BIN / "gunicorn"), *GUNICORN, "-k", "gthread", "--threads", "4",
                   "-b", f"127.0.0.1:{p}", "app:app"],
        "python-flask",
        False,
    ),
    "aiohttp": (lambda p: [PY, "server.py", str(p)], "python-aiohttp", False),
    "tornado": (lambda p: [PY, "server.py", str(p)], "python-tornado", False),
    "uvicorn": (
        lambda p: [str(BIN / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(p)],
        "python-starlette",
        True,
    ),
    "hypercorn": (
        lambda p: [str(BIN / "hypercorn"), "app:app", "--bind", f"127.0.0.1:{p}"],
        "python-starlette",
        True,
    ),
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, tmp_path_factory):
    name = request.param
    argv, folder, stream_mode = SERVERS[name]
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / f"{name}.log"
    proc = ServerProcess(name, argv(port), EXAMPLES / folder, port, log)
    proc.stream_mode = stream_mode
    yield proc
    proc.stop()
    assert_no_errors(proc.logs(), name)


def channel() -> str:
    return "t-" + uuid.uuid4().hex[:10]


def url(server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def test_httpx_sse_receives_events(server):
    ch = channel()
    with httpx.Client(timeout=5) as client:
        with httpx_sse.connect_sse(client, "GET", url(server, f"/events?channel={ch}")) as source:
            assert source.response.status_code == 200
            assert source.response.headers["content-type"].startswith("text/event-stream")
            events = source.iter_sse()
            assert server.publish(ch, "hello\nworld", event="greeting", id="g1") == 1
            assert server.publish(ch, '{"n": 2}') == 1
            first = next(events)
            assert (first.event, first.data, first.id) == ("greeting", "hello\nworld", "g1")
            second = next(events)
            assert second.event == "message" and second.data == '{"n": 2}'
            assert second.id  # the engine's own id (auto_ids)


def test_stream_is_not_touched_by_the_server(server):
    """After the hand-over the server writes nothing more, and neither closes nor
    shuts down the stream: the client gets exactly the engine's bytes, for as long as
    the engine keeps it."""
    ch = channel()
    client = RawClient.get(server.port, f"/events?channel={ch}")
    try:
        head = client.read_head()
        assert head.startswith(b"HTTP/1.1 200")
        if not server.stream_mode:
            # The engine's head, exactly: nothing of the framework's.
            assert head == (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Connection: keep-alive\r\nX-Accel-Buffering: no\r\n\r\n"
            )
        # The server finished its request handling (and closed its placeholder) by now.
        assert client.quiet_for(0.5), f"unexpected bytes or EOF: {client.parser.raw!r}"
        assert server.publish(ch, "one", id="x1") == 1
        assert client.read_events(1) == [{"id": "x1", "data": "one"}]
        if not server.stream_mode:
            assert client.parser.raw == b"id: x1\ndata: one\n\n"
        assert client.quiet_for(0.3)
        assert server.publish(ch, "two", id="x2") == 1
        assert client.read_events(2)[1] == {"id": "x2", "data": "two"}
    finally:
        client.close()


def test_last_event_id_replay(server):
    ch = channel()
    # History is kept even while nobody listens.
    for i in range(1, 4):
        assert server.publish(ch, f"event {i}", id=f"r{i}") == 0
    with httpx.Client(timeout=5) as client:
        with httpx_sse.connect_sse(
            client, "GET", url(server, f"/events?channel={ch}"), headers={"Last-Event-ID": "r1"}
        ) as source:
            events = source.iter_sse()
            got = [next(events) for _ in range(2)]
            assert [(e.id, e.data) for e in got] == [("r2", "event 2"), ("r3", "event 3")]
            server.publish(ch, "live", id="r4")
            live = next(events)
            assert (live.id, live.data) == ("r4", "live")
    # First connection of a page: the id as a query parameter.
    raw = RawClient.get(server.port, f"/events?channel={ch}&lastEventId=r3")
    try:
        raw.read_head()
        assert raw.read_events(1) == [{"id": "r4", "data": "live"}]
    finally:
        raw.close()


def test_unknown_last_event_id_gets_a_gap_event(server):
    ch = channel()
    raw = RawClient.get(server.port, f"/events?channel={ch}", headers={"Last-Event-ID": "not-from-this-run"})
    try:
        raw.read_head()
        [gap] = raw.read_events(1)
        # Its id is the engine's position the client resumes from ("<epoch>-<seq>").
        assert "-" in gap.pop("id")
        assert gap == {"event": "sse-gap", "data": '{"lastEventId":"not-from-this-run"}'}
    finally:
        raw.close()


def test_client_leaving_is_detected(server):
    before = server.stats()
    ch = channel()
    raw = RawClient.get(server.port, f"/events?channel={ch}")
    raw.read_head()
    # Counters that only grow: clients of earlier tests may still be leaving meanwhile.
    wait_for(lambda: server.stats()["connections_total"] >= before["connections_total"] + 1,
             what="the client to be registered")
    raw.close()
    wait_for(lambda: server.stats()["disconnects"]["closed"] >= before["disconnects"]["closed"] + 1,
             what="the engine to see the client leave")
    # Nobody left to deliver to.
    assert server.publish(ch, "anyone?") == 0


def test_many_clients_fan_out(server):
    ch = channel()
    clients = [RawClient.get(server.port, f"/events?channel={ch}") for _ in range(20)]
    try:
        for c in clients:
            c.read_head()
        for i in range(5):
            assert server.publish(ch, f"m{i}", id=f"m{i}") == 20
        for c in clients:
            assert [e["data"] for e in c.read_events(5)] == [f"m{i}" for i in range(5)]
    finally:
        for c in clients:
            c.close()


def test_server_shuts_down_promptly_with_open_streams(server):
    """Checked last for each server (module teardown stops it): an open stream must
    not keep the server from stopping. Here we only open one and leave it open."""
    ch = channel()
    server._leftover = RawClient.get(server.port, f"/events?channel={ch}")
    server._leftover.read_head()
    started = time.monotonic()
    assert server.publish(ch, "still here") == 1
    assert time.monotonic() - started < 5
