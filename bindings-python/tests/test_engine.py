"""The Python API over real loopback sockets: every call, values in and out, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import threading
import time

import pytest

import sse_engine
from conftest import RawClient, tcp_pair, wait_for

ENGINE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: keep-alive\r\nX-Accel-Buffering: no\r\n"
)


def connect(engine, **options):
    """Hands a fresh connection to ``engine``; returns (client id, RawClient)."""
    server, client = tcp_pair()
    cid = engine.connect(server, **options)
    raw = RawClient(client, expect_head=not options.get("head_sent", False))
    if not options.get("head_sent"):
        raw.read_head()
    return cid, raw


# ---------------------------------------------------------------- hand-over


def test_connect_socket_writes_head_and_detaches(engine):
    server, client = tcp_pair()
    cid = engine.connect(server, channels=["news"], headers={"X-Trace": "abc"}, retry_ms=2500)
    assert isinstance(cid, int) and cid > 0
    assert server.fileno() == -1  # detached: the object no longer owns the descriptor
    raw = RawClient(client)
    assert raw.read_head() == ENGINE_HEAD + b"X-Trace: abc\r\n\r\n"
    assert engine.broadcast("news", "hi") == 1
    hint, event = raw.read_events(2)
    assert hint == {"retry": "2500"}
    assert event["data"] == "hi"
    assert raw.parser.raw.startswith(b"retry: 2500\n\n")


def test_connect_int_fd_passes_ownership(engine):
    server, client = tcp_pair()
    fd = server.detach()
    cid = engine.connect(fd, channels="news", head_sent=True)
    raw = RawClient(client, expect_head=False)
    assert engine.send(cid, "direct", event="note", id="7")
    assert raw.read_events(1) == [{"id": "7", "event": "note", "data": "direct"}]
    engine.disconnect(cid)
    raw.wait_eof()
    # The engine closed the descriptor when the client left.
    wait_for(lambda: _fd_closed(fd), what="the engine to close the fd")


def _fd_closed(fd):
    try:
        os.fstat(fd)
        return False
    except OSError:
        return True


def test_swap_takeover_leaves_a_harmless_placeholder(engine):
    server, client = tcp_pair()
    cid = engine.connect(server, channels=["c"], takeover="swap")
    raw = RawClient(client)
    raw.read_head()
    # What servers do afterwards acts on the placeholder only.
    assert server.fileno() != -1
    assert server.recv(10) == b""  # end-of-file at once
    server.sendall(b"HTTP/1.1 500 oops\r\n\r\n")  # swallowed by the sink
    server.shutdown(socket.SHUT_WR)
    server.close()
    assert raw.quiet_for(0.2)
    assert engine.broadcast("c", "still alive") == 1
    assert raw.read_events(1)[0]["data"] == "still alive"
    assert raw.parser.raw == b"id: " + raw.parser.events[0]["id"].encode() + b"\ndata: still alive\n\n"
    assert engine.get_client(cid) is not None


def test_limit_reached_answers_503_and_takes_the_socket():
    with sse_engine.Engine(max_clients=1, heartbeat=None, busy_retry_after=7) as engine:
        first = connect(engine)
        server, client = tcp_pair()
        with pytest.raises(sse_engine.LimitReachedError) as refused:
            engine.connect(server)
        assert refused.value.fd_taken is True
        assert server.fileno() == -1
        client.settimeout(5)
        answer = b""
        while True:
            chunk = client.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n")
        assert engine.stats()["refused_total"] == 1


# ---------------------------------------------------------------- sending


def test_sends_and_counts(engine):
    a, ra = connect(engine, channels=["x", "y"], user="alice")
    b, rb = connect(engine, channels=["x"], user="alice")
    c, rc = connect(engine, channels=["y"], user="bob")
    assert engine.send(a, "to a") is True
    assert engine.send_to_user("alice", "to alice") == 2
    assert engine.send_to_user("nobody", "x") == 0
    assert engine.broadcast("x", "to x") == 2
    assert engine.broadcast("nothing", "to nobody") == 0
    assert engine.broadcast_all("to all") == 3
    assert [e["data"] for e in ra.read_events(4)] == ["to a", "to alice", "to x", "to all"]
    assert [e["data"] for e in rb.read_events(3)] == ["to alice", "to x", "to all"]
    assert [e["data"] for e in rc.read_events(1)] == ["to all"]


def test_broadcast_where_filters_on_metadata(engine):
    admin, ra = connect(engine, channels=["ops"], metadata={"role": "admin", "tier": 1})
    user, ru = connect(engine, channels=["ops"], metadata={"role": "user", "tier": 2})
    plain, rp = connect(engine, channels=["ops"])
    assert engine.broadcast_where("ops", {"role": "admin"}, "admins only") == 3
    assert engine.broadcast_where("ops", {"tier": {"$in": [1, 2]}}, "tiers") == 3
    assert engine.set_metadata(plain, {"role": "admin"})
    assert engine.broadcast_where("ops", '{"role": "admin"}', "json text filter") == 3
    assert [e["data"] for e in ra.read_events(3)] == ["admins only", "tiers", "json text filter"]
    assert [e["data"] for e in ru.read_events(1)] == ["tiers"]
    assert [e["data"] for e in rp.read_events(1)] == ["json text filter"]


def test_broadcast_many_delivers_each_item_as_a_broadcast(engine):
    a, ra = connect(engine, channels=["a"])
    b, rb = connect(engine, channels=["a", "b"])
    items = [
        {"channel": "a", "data": "one", "id": "i1"},
        {"channel": "b", "data": {"n": 2}, "event": "note", "retry_ms": 1500},
        {"channel": "nobody", "data": "kept in history"},
        {"channel": "a", "data": "line 1\nline 2", "id": 7},
    ]
    assert engine.broadcast_many(iter(items)) == 2 + 1 + 0 + 2
    assert ra.read_events(2) == [
        {"id": "i1", "data": "one"},
        {"id": "7", "data": "line 1\nline 2"},
    ]
    events = rb.read_events(3)
    assert events[0] == {"id": "i1", "data": "one"}
    assert events[1]["event"] == "note" and events[1]["data"] == '{"n": 2}'
    assert b"retry: 1500\n" in rb.parser.raw
    assert engine.stats()["events_published"] == 4
    # Each item went into its channel's history: a reconnect replays them.
    _, late = connect(engine, channels=["a"], last_event_id="i1")
    assert late.read_events(1) == [{"id": "7", "data": "line 1\nline 2"}]
    assert engine.broadcast_many([]) == 0


def test_broadcast_many_checks_every_item_first(engine):
    cid, raw = connect(engine, channels=["a"])
    ok = {"channel": "a", "data": "fine"}
    cases = [
        ([ok, "not a mapping"], TypeError, r"items\[1\] must be a mapping"),
        ([ok, {"channel": "a"}], ValueError, r"items\[1\] has no 'data'"),
        ([ok, {"channel": "a", "data": "x", "colour": 1}], ValueError, r"items\[1\] has unknown keys: 'colour'"),
        ([ok, {"channel": 5, "data": "x"}], TypeError, r"items\[1\]\['channel'\] must be a str"),
        ([ok, {"channel": "a", "data": "x", "event": 3}], TypeError, r"items\[1\]\['event'\] must be a str"),
        ([ok, {"channel": "a", "data": "x", "id": 1.5}], TypeError, r"items\[1\]: id must be a str"),
        ([ok, {"channel": "a", "data": b"\xff"}], ValueError, r"items\[1\]: 'utf-8' codec"),
        ([ok, {"channel": "a", "data": object()}], TypeError, r"items\[1\]: "),
        ([ok, {"channel": "a", "data": "x", "retry_ms": -1}], ValueError, r"items\[1\]\['retry_ms'\]"),
        ([ok, {"channel": "a", "data": "x", "retry_ms": "1"}], TypeError, r"items\[1\]\['retry_ms'\]"),
        # The engine's own checks name the item too.
        ([ok, {"channel": "", "data": "x"}], ValueError, r"item 1: .*channel"),
        ([ok, {"channel": "a", "data": "x", "id": "a\nb"}], ValueError, r"item 1: "),
        ([ok, {"channel": "a", "data": "x", "event": ""}], ValueError, r"item 1: "),
    ]
    for items, kind, pattern in cases:
        with pytest.raises(kind, match=pattern):
            engine.broadcast_many(items)
    for not_items in ("abc", b"abc", {"channel": "a", "data": "x"}, 5, None):
        with pytest.raises(TypeError):
            engine.broadcast_many(not_items)
    # Nothing of a refused batch was published.
    assert engine.stats()["events_published"] == 0
    assert raw.quiet_for(0.2)
    engine.close()
    with pytest.raises(sse_engine.EngineClosedError):
        engine.broadcast_many([ok])


def test_data_serialization(engine):
    cid, raw = connect(engine)
    engine.send(cid, {"a": [1, 2]})
    engine.send(cid, 42)
    engine.send(cid, b"bytes are UTF-8 text")
    engine.send(cid, "line 1\nline 2\r\nline 3\rline 4")
    engine.send(cid, " leading space")
    engine.send(cid, "")
    events = raw.read_events(6)
    assert [e.get("data") for e in events] == [
        '{"a": [1, 2]}', "42", "bytes are UTF-8 text", "line 1\nline 2\nline 3\nline 4",
        " leading space", "",
    ]
    assert b"data: line 1\ndata: line 2\ndata: line 3\ndata: line 4\n\n" in raw.parser.raw


def test_custom_serializer():
    calls = []

    def serializer(value):
        calls.append(value)
        return json.dumps(value, separators=(",", ":")).encode()

    with sse_engine.Engine(heartbeat=None, serializer=serializer) as engine:
        cid, raw = connect(engine)
        engine.send(cid, {"k": [1, 2]})
        assert raw.read_events(1)[0]["data"] == '{"k":[1,2]}'
        assert calls == [{"k": [1, 2]}]
    with sse_engine.Engine(heartbeat=None, serializer=lambda v: 1) as engine:
        with pytest.raises(TypeError, match="serializer"):
            engine.broadcast("c", object())


def test_ids_retry_and_engine_ids(engine):
    cid, raw = connect(engine, channels=["c"])
    engine.broadcast("c", "a", id=5, retry_ms=1000)
    engine.broadcast("c", "b")
    first, second = raw.read_events(2)
    assert first == {"id": "5", "retry": "1000", "data": "a"}
    assert second["id"].endswith("-2")  # the engine's own: <epoch>-<seq>
    assert engine.get_client(cid)["last_event_id"] == second["id"]


# ---------------------------------------------------------------- membership & registry


def test_subscribe_unsubscribe_disconnect(engine):
    cid, raw = connect(engine)
    assert engine.subscribe(cid, "late") is True
    assert engine.subscribe(cid, "late") is False
    assert engine.broadcast("late", "joined") == 1
    assert raw.read_events(1)[0]["data"] == "joined"
    assert engine.unsubscribe(cid, "late") is True
    assert engine.unsubscribe(cid, "late") is False
    assert engine.broadcast("late", "left") == 0
    assert engine.disconnect(cid) is True
    raw.wait_eof()
    # Unknown clients: False, never an exception.
    for call in (engine.send, lambda c, _: engine.disconnect(c), engine.subscribe, engine.unsubscribe):
        assert call(cid, "late") is False
    assert engine.set_metadata(cid, {"a": 1}) is False
    assert engine.get_client(cid) is None
    assert engine.send(10**15, "x") is False


def test_registry_queries(engine):
    a, ra = connect(engine, channels=["news", "sport"], user="alice", metadata={"plan": "pro"},
                    last_event_id="abc-1")
    b, rb = connect(engine, channels=["news"], user="bob")
    # "abc-1" is not in history: a gap, whose id is the client's last event id from then on.
    [gap] = ra.read_events(1)
    info = engine.get_client(a)
    assert info["id"] == a
    assert info["user"] == "alice"
    assert info["channels"] == ["news", "sport"]
    assert info["metadata"] == {"plan": "pro"}
    assert info["remote_addr"].startswith("127.0.0.1:")
    assert abs(info["connected_at_ms"] / 1000 - time.time()) < 60
    assert info["queued_bytes"] == 0
    assert info["last_event_id"] == gap["id"]
    assert [c["id"] for c in engine.clients()] == [a, b]
    assert [c["id"] for c in engine.clients_in("news")] == [a, b]
    assert [c["id"] for c in engine.clients_in("sport")] == [a]
    assert engine.clients_in("unknown") == []
    assert [c["id"] for c in engine.clients_of("bob")] == [b]
    assert engine.client_count() == 2
    assert engine.channel_count("news") == 2
    assert engine.user_count("alice") == 1
    engine.broadcast("sport", "goal")
    channels = {c["name"]: c for c in engine.channels()}
    assert channels["news"] == {"name": "news", "members": 2, "history": 0}
    assert channels["sport"] == {"name": "sport", "members": 1, "history": 1}
    assert engine.set_metadata(a, None)
    assert engine.get_client(a)["metadata"] is None


def test_metadata_integers_beyond_64_bits_stay_exact(engine):
    big = 123456789012345678901234567890
    a, ra = connect(engine, channels=["room"], metadata={"n": big, "m": -(2**70), "f": 1.5})
    assert engine.get_client(a)["metadata"] == {"n": big, "m": -(2**70), "f": 1.5}
    # As doubles big and big + 1 are equal; the filter tells them apart.
    assert engine.set_metadata(a, {"n": big + 1})
    assert engine.broadcast_where("room", {"n": big}, "no") == 1
    assert engine.broadcast_where("room", {"n": big + 1}, "yes") == 1
    assert [e["data"] for e in ra.read_events(1)] == ["yes"]


def test_channels_lifecycle(engine):
    a, ra = connect(engine, channels=["room"])
    b, rb = connect(engine, channels=["room"])
    engine.configure_channel("quiet", history_size=0, history_age=0)
    engine.broadcast("quiet", "not kept")
    assert {c["name"]: c["history"] for c in engine.channels()}["quiet"] == 0
    assert engine.close_channel("room") == 2
    assert engine.broadcast("room", "gone") == 0
    assert engine.get_client(a)["channels"] == []
    engine.subscribe(a, "room2")
    engine.subscribe(b, "room2")
    assert engine.close_channel("room2", disconnect=True) == 2
    ra.wait_eof()
    rb.wait_eof()
    engine.broadcast("empty", "x")  # a channel with history only
    engine.close_channel("empty")
    assert engine.remove_empty_channels() >= 1  # "quiet" (configured, no members)
    assert "quiet" not in {c["name"] for c in engine.channels()}


def test_stats_and_metrics(engine):
    cid, raw = connect(engine, channels=["m"])
    engine.broadcast("m", "x")
    raw.read_events(1)
    raw.close()
    wait_for(lambda: engine.stats()["disconnects"]["closed"] == 1, what="the disconnect")
    stats = engine.stats()
    assert stats["connections_total"] == 1
    assert stats["connections_open"] == 0
    assert stats["events_published"] == 1
    assert stats["bytes_written"] > 0
    assert set(stats["disconnects"]) == set(sse_engine.DISCONNECT_REASONS)
    text = engine.metrics()
    assert "sse_engine_connections_total 1" in text
    assert "# TYPE" in text


def test_config_reports_options():
    with sse_engine.Engine(heartbeat=2.5, write_timeout=None, history_size=10, gap_event=None) as e:
        config = e.config()
        assert config["heartbeat"] == 2.5
        assert config["write_timeout"] is None
        assert config["history_size"] == 10
        assert config["gap_event"] is None
        assert config["max_queue_bytes"] == 1024 * 1024  # default kept


# ---------------------------------------------------------------- replay


def test_last_event_id_replay_and_gap(engine):
    for i in range(5):
        engine.broadcast("h", f"e{i}", id=f"id{i}")
    cid, raw = connect(engine, channels=["h"], last_event_id="id2")
    assert [e["data"] for e in raw.read_events(2)] == ["e3", "e4"]
    assert engine.stats()["events_replayed"] == 2
    gaps = []
    engine.on_gap = gaps.append
    gid, graw = connect(engine, channels=["h"], last_event_id="unknown-7")
    [gap] = graw.read_events(1)
    assert "-" in gap.pop("id")  # the position it resumes from
    assert gap == {"event": "sse-gap", "data": '{"lastEventId":"unknown-7"}'}
    wait_for(lambda: gaps == [gid], what="on_gap")


# ---------------------------------------------------------------- callbacks


def test_lifecycle_callbacks_on_their_own_thread():
    seen = []
    threads = set()

    def record(kind):
        def callback(*args):
            threads.add(threading.current_thread().name)
            seen.append((kind,) + args)
        return callback

    engine = sse_engine.Engine(heartbeat=None, on_connect=record("connect"),
                               on_disconnect=record("disconnect"))
    a, ra = connect(engine)
    b, rb = connect(engine)
    c, rc = connect(engine)
    wait_for(lambda: len(seen) == 3, what="connect callbacks")
    ra.close()
    engine.disconnect(b)
    wait_for(lambda: len(seen) == 5, what="disconnect callbacks")
    engine.close()  # the remaining client leaves with reason "shutdown" before close returns
    assert sorted(seen) == sorted([
        ("connect", a), ("connect", b), ("connect", c),
        ("disconnect", a, "closed"), ("disconnect", b, "server"), ("disconnect", c, "shutdown"),
    ])
    assert threads == {"sse-engine-callbacks"}


def test_callback_exception_is_logged_and_engine_goes_on(engine, caplog):
    calls = []

    def bad(client):
        calls.append(client)
        raise RuntimeError("boom in callback")

    engine.on_connect = bad
    with caplog.at_level(logging.ERROR, logger="sse_engine"):
        a, ra = connect(engine, channels=["c"])
        b, rb = connect(engine, channels=["c"])
        wait_for(lambda: len(calls) == 2, what="both callbacks")
        wait_for(lambda: len([r for r in caplog.records if "on_connect" in r.getMessage()]) == 2,
                 what="the log records")
    record = caplog.records[0]
    assert record.exc_info and "boom in callback" in str(record.exc_info[1])
    assert engine.broadcast("c", "fine") == 2
    assert ra.read_events(1)[0]["data"] == "fine"


def test_callback_raising_systemexit_or_keyboardinterrupt_is_logged_too(engine, caplog):
    """SystemExit and KeyboardInterrupt are no exceptions to the rule: logged, and the
    callback thread goes on running the later callbacks."""
    seen = []

    def on_connect(client):
        seen.append(client)
        if len(seen) == 1:
            raise SystemExit(4)
        if len(seen) == 2:
            raise KeyboardInterrupt

    engine.on_connect = on_connect
    with caplog.at_level(logging.ERROR, logger="sse_engine"):
        a, ra = connect(engine)
        wait_for(lambda: len(seen) == 1, what="the first callback")
        b, rb = connect(engine)
        wait_for(lambda: len(seen) == 2, what="the second callback")
        c, rc = connect(engine)
        wait_for(lambda: len(seen) == 3, what="a callback after SystemExit and KeyboardInterrupt")
    assert seen == [a, b, c]
    raised = [r.exc_info[0] for r in caplog.records if r.exc_info and "on_connect" in r.getMessage()]
    assert raised == [SystemExit, KeyboardInterrupt]
    assert engine._dispatcher.is_alive()


def test_callback_raising_systemexit_on_an_asyncio_loop_does_not_stop_it(caplog):
    async def main():
        seen = []
        done = asyncio.Event()

        def on_connect(client):
            seen.append(("connect", client))
            raise KeyboardInterrupt

        async def on_disconnect(client, reason):
            seen.append(("disconnect", client))
            done.set()
            raise SystemExit(5)

        engine = sse_engine.Engine(heartbeat=None, callback_loop=asyncio.get_running_loop(),
                                   on_connect=on_connect, on_disconnect=on_disconnect)
        try:
            cid, raw = connect(engine)
            raw.close()
            await asyncio.wait_for(done.wait(), 5)
            for _ in range(3):
                await asyncio.sleep(0)  # the task's end is logged
            assert seen == [("connect", cid), ("disconnect", cid)]
        finally:
            engine.close()
        return "loop still running"

    with caplog.at_level(logging.ERROR, logger="sse_engine"):
        assert asyncio.run(main()) == "loop still running"
    raised = [r.exc_info[0] for r in caplog.records if r.exc_info]
    assert raised == [KeyboardInterrupt, SystemExit]


def test_callbacks_on_an_asyncio_loop():
    async def main():
        loop = asyncio.get_running_loop()
        seen = []
        done = asyncio.Event()

        async def on_disconnect(client, reason):  # a coroutine callback becomes a task
            assert asyncio.get_running_loop() is loop
            seen.append(("disconnect", client, reason))
            done.set()

        def on_connect(client):
            assert threading.current_thread() is threading.main_thread()
            seen.append(("connect", client))

        engine = sse_engine.Engine(heartbeat=None, callback_loop=loop, on_connect=on_connect,
                                   on_disconnect=on_disconnect)
        try:
            cid, raw = connect(engine)
            raw.close()
            await asyncio.wait_for(done.wait(), 5)
            assert seen == [("connect", cid), ("disconnect", cid, "closed")]
        finally:
            engine.close()

    asyncio.run(main())


def test_decorator_registration(engine):
    seen = []

    @engine.on("connect")
    def _(client):
        seen.append(client)

    cid, raw = connect(engine)
    wait_for(lambda: seen == [cid], what="the decorated callback")
    with pytest.raises(ValueError):
        engine.on("bogus")


# ---------------------------------------------------------------- stream mode


def test_stream_mode_take_and_close(engine):
    gone = []
    engine.on_disconnect = lambda c, r: gone.append((c, r))
    for i in range(3):
        engine.broadcast("s", f"h{i}", id=f"h{i}")
    cid = engine.connect_stream(channels=["s"], last_event_id="h0", retry_ms=100)
    data = b""
    deadline = time.monotonic() + 5
    while not data.endswith(b"h2\n\n") and time.monotonic() < deadline:
        data += engine.take_stream(cid, 7) or b""  # small takes: the rest stays queued
    assert data == b"retry: 100\n\nid: h1\ndata: h1\n\nid: h2\ndata: h2\n\n"
    assert engine.take_stream(cid) == b""
    assert engine.close_stream(cid) is True
    wait_for(lambda: gone == [(cid, "closed")], what="the disconnect")
    assert engine.take_stream(cid) is None
    assert engine.close_stream(cid) is False
    with pytest.raises(ValueError, match="metadata"):
        engine.connect_stream(channels=["s"], metadata="[]")


# ---------------------------------------------------------------- bad input


def test_bad_sockets_are_refused_with_clear_errors(engine, tmp_path):
    with pytest.raises(TypeError, match="socket.socket or an int"):
        engine.connect("not a socket")
    with pytest.raises(TypeError):
        engine.connect(3.0)
    # TLS socket
    server, client = tcp_pair()
    tls = ssl.create_default_context().wrap_socket(client, server_hostname="x",
                                                   do_handshake_on_connect=False)
    with pytest.raises(TypeError, match="SSLSocket"):
        engine.connect(tls)
    tls.close()
    server.close()
    # closed
    server, client = tcp_pair()
    server.close()
    with pytest.raises(ValueError, match="closed"):
        engine.connect(server)
    # The engine checks the socket (the binding does not check it again); a refusal
    # leaves it as it was, in both takeover modes.
    a, b = socket.socketpair()
    for takeover in ("detach", "swap"):
        for sock, message in [
            (socket.create_server(("127.0.0.1", 0)), "listening"),
            (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), "not a stream"),
            (a, "not a TCP/IP socket"),
            (socket.socket(), "not connected"),
        ]:
            fd = sock.fileno()
            with pytest.raises(ValueError, match=message) as refused:
                engine.connect(sock, takeover=takeover)
            assert refused.value.fd_taken is False
            assert sock.fileno() == fd
            os.fstat(fd)  # still open
            assert sock.getsockname() is not None
            if sock is not a:
                sock.close()
    for sock in (a, b):
        sock.close()
    # int fds that are no sockets: still open, the caller's
    path = tmp_path / "f"
    path.write_text("x")
    with open(path) as f:
        with pytest.raises(ValueError, match="regular file") as refused:
            engine.connect(f.fileno())
        assert refused.value.fd_taken is False
        assert f.read() == "x"
    with pytest.raises(ValueError):
        engine.connect(-1)
    # bad takeover mode
    server, client = tcp_pair()
    with pytest.raises(ValueError, match="takeover"):
        engine.connect(server, takeover="steal")
    assert server.fileno() != -1


def test_bad_options_leave_the_socket_with_the_caller(engine):
    server, client = tcp_pair()
    for bad, exc in [
        ({"channels": [""]}, ValueError),
        ({"channels": [1]}, TypeError),
        ({"user": 5}, TypeError),
        ({"metadata": [1, 2]}, TypeError),
        ({"metadata": "[1]"}, ValueError),
        ({"metadata": "{"}, ValueError),
        ({"headers": {"X-Bad": "a\r\nInjected: 1"}}, ValueError),
        ({"headers": {"Content-Type": "text/html"}}, ValueError),
        ({"last_event_id": "a\nb"}, ValueError),
        ({"retry_ms": -1}, ValueError),
        ({"retry_ms": 2**64}, ValueError),
        ({"retry_ms": "soon"}, TypeError),
    ]:
        with pytest.raises(exc):
            engine.connect(server, **bad)
        assert server.fileno() != -1, bad
    # Still usable: the server can answer the request itself.
    server.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    client.settimeout(5)
    assert client.recv(100).startswith(b"HTTP/1.1 400")


def test_bad_event_input(engine):
    cid, raw = connect(engine, channels=["c"])
    with pytest.raises(ValueError, match="CR or LF"):
        engine.broadcast("c", "x", event="bad\nname")
    with pytest.raises(ValueError, match="CR or LF"):
        engine.send(cid, "x", id="a\rb")
    with pytest.raises(ValueError, match="NUL"):
        engine.broadcast("c", "x", id="a\0b")
    with pytest.raises(ValueError):
        engine.broadcast("c", "x", event="")
    with pytest.raises(ValueError):
        engine.broadcast("", "x")
    with pytest.raises(TypeError):
        engine.broadcast("c", object())
    with pytest.raises(TypeError):
        engine.send("one", "x")
    with pytest.raises(TypeError):
        engine.broadcast(["c"], "x")
    with pytest.raises(TypeError):
        engine.broadcast("c", "x", id=1.5)
    with pytest.raises(ValueError):
        engine.broadcast_where("c", {"a": {"$gt": 1}}, "x")
    with pytest.raises(TypeError):
        engine.broadcast_where("c", None, "x")
    with pytest.raises(UnicodeError):
        engine.broadcast("c", "\ud800")
    with pytest.raises(UnicodeDecodeError):
        engine.broadcast("c", b"\xff")


def test_bad_engine_options():
    with pytest.raises(TypeError, match="unknown engine option"):
        sse_engine.Engine(heartbeats=3)
    with pytest.raises(ValueError):
        sse_engine.Engine(threads=0)
    with pytest.raises(ValueError):
        sse_engine.Engine(heartbeat=0)
    with pytest.raises(ValueError, match="heartbeat"):
        sse_engine.Engine(heartbeat=-1)
    with pytest.raises(TypeError, match="history_size"):
        sse_engine.Engine(history_size="many")
    with pytest.raises(ValueError):
        sse_engine.Engine(gap_event="two\nlines")
    with pytest.raises(ValueError):
        sse_engine.Engine(max_queue_bytes=10)
    with pytest.raises(TypeError):
        sse_engine.Engine(serializer=3)


def test_out_of_range_integers_are_value_errors_naming_the_argument(engine):
    cid, raw = connect(engine, channels=["c"])
    server, client = tcp_pair()
    calls = {
        "client": [
            lambda v: engine.send(v, "x"), lambda v: engine.subscribe(v, "c"),
            lambda v: engine.unsubscribe(v, "c"), lambda v: engine.disconnect(v),
            lambda v: engine.set_metadata(v, None), lambda v: engine.get_client(v),
            lambda v: engine.take_stream(v), lambda v: engine.close_stream(v),
        ],
        "retry_ms": [
            lambda v: engine.send(cid, "x", retry_ms=v), lambda v: engine.send_to_user("u", "x", retry_ms=v),
            lambda v: engine.broadcast("c", "x", retry_ms=v), lambda v: engine.broadcast_all("x", retry_ms=v),
            lambda v: engine.broadcast_where("c", {}, "x", retry_ms=v),
            lambda v: engine.connect_stream(retry_ms=v), lambda v: engine.connect(server, retry_ms=v),
        ],
        "max_bytes": [lambda v: engine.take_stream(cid, v)],
        "history_size": [lambda v: engine.configure_channel("c", history_size=v, history_age=1)],
        "fd": [lambda v: engine.connect(v)],
    }
    for name, fns in calls.items():
        for fn in fns:
            for value in (-1, 2**64, 2**200):
                with pytest.raises(ValueError, match=name) as info:
                    fn(value)
                assert not isinstance(info.value, OverflowError)
    for value in (-1, 10**400, float("inf")):
        with pytest.raises(ValueError, match="history_age"):
            engine.configure_channel("c", history_size=1, history_age=value)
    with pytest.raises(TypeError, match="client"):
        engine.send("one", "x")
    assert server.fileno() != -1  # refused before the hand-over: still the caller's
    assert engine.client_count() == 1 and engine.send(cid, "fine")


def test_out_of_range_engine_options_are_value_errors():
    for name in ("threads", "retry_ms", "max_queue_bytes", "max_clients", "max_clients_per_channel",
                 "busy_retry_after", "history_size", "max_replay"):
        for value in (-1, 2**64):
            with pytest.raises(ValueError, match=name) as info:
                sse_engine.Engine(**{name: value})
            assert not isinstance(info.value, OverflowError)
    for name in ("heartbeat", "write_timeout", "history_age"):
        with pytest.raises(ValueError, match=name):
            sse_engine.Engine(**{name: 10**400})
    with sse_engine.Engine(heartbeat=None) as engine:
        with pytest.raises(ValueError, match="timeout"):
            engine.close(timeout=10**400)
        assert not engine.closed


def test_unencodable_text_option_names_the_option():
    with pytest.raises(ValueError, match="gap_event") as info:
        sse_engine.Engine(gap_event="\ud800")
    assert "arguments" not in str(info.value)
    with pytest.raises(TypeError, match="gap_event"):
        sse_engine.Engine(gap_event=5)


# ---------------------------------------------------------------- close


def test_calls_after_close_raise_runtime_error():
    engine = sse_engine.Engine(heartbeat=None)
    cid, raw = connect(engine, channels=["c"])
    with engine:
        pass  # the context manager closes
    assert engine.closed
    raw.wait_eof()
    server, client = tcp_pair()
    calls = [
        lambda: engine.connect(server),
        lambda: engine.connect_stream(),
        lambda: engine.send(cid, "x"),
        lambda: engine.send_to_user("u", "x"),
        lambda: engine.broadcast("c", "x"),
        lambda: engine.broadcast_all("x"),
        lambda: engine.broadcast_where("c", {}, "x"),
        lambda: engine.subscribe(cid, "c"),
        lambda: engine.unsubscribe(cid, "c"),
        lambda: engine.disconnect(cid),
        lambda: engine.set_metadata(cid, None),
        lambda: engine.get_client(cid),
        lambda: engine.clients(),
        lambda: engine.clients_in("c"),
        lambda: engine.clients_of("u"),
        lambda: engine.channels(),
        lambda: engine.client_count(),
        lambda: engine.close_channel("c"),
        lambda: engine.remove_empty_channels(),
        lambda: engine.configure_channel("c", history_size=1, history_age=1),
        lambda: engine.take_stream(cid),
        lambda: engine.close_stream(cid),
    ]
    for call in calls:
        with pytest.raises(RuntimeError):
            call()
    with pytest.raises(sse_engine.EngineClosedError):
        engine.broadcast("c", "x")
    assert server.fileno() != -1  # a refused socket stays the caller's
    engine.close()  # closing twice does nothing
    assert engine.stats()["disconnects"]["shutdown"] == 1  # counters stay readable


def test_close_sends_a_last_event():
    engine = sse_engine.Engine(heartbeat=None)
    cid, raw = connect(engine)
    with pytest.raises(ValueError):
        engine.close(last_event="x", last_event_name="bad\nname")
    with pytest.raises(ValueError):
        engine.close(timeout=-1)
    assert not engine.closed and engine.send(cid, "still open")
    raw.read_events(1)
    raw.parser.events.clear()
    engine.close(timeout=2, last_event={"bye": True}, last_event_name="shutdown")
    raw.wait_eof()
    assert raw.parser.events == [{"event": "shutdown", "data": '{"bye": true}'}]


def test_slow_client_is_dropped_with_bounded_memory():
    reasons = []
    with sse_engine.Engine(heartbeat=None, max_queue_bytes=64 * 1024,
                           on_disconnect=lambda c, r: reasons.append(r)) as engine:
        server, client = tcp_pair()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        engine.connect(server, channels=["big"])
        payload = "x" * 8192
        for _ in range(200):  # 1.6 MB that nobody reads
            engine.broadcast("big", payload)
        wait_for(lambda: reasons == ["slow"], what="the slow client to be dropped")
        assert engine.stats()["queue_high_water"] <= 64 * 1024 + 8192 + 64
        client.close()


def test_is_connected_answers_from_the_directory(engine):
    cid, raw = connect(engine)
    assert engine.is_connected(cid) is True
    assert engine.disconnect(cid) is True
    assert engine.is_connected(cid) is False  # leaving from the moment disconnect returned
    assert engine.is_connected(cid + 1000) is False
    with pytest.raises(ValueError):
        engine.is_connected(-1)


def test_a_signal_during_close_interrupts_the_wait_and_the_engine_still_closes():
    import signal

    reasons = []
    engine = sse_engine.Engine(heartbeat=None, on_disconnect=lambda c, r: reasons.append(r))
    server, client = tcp_pair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    engine.connect(server, channels=["big"])
    for _ in range(32):  # 256 KiB that nobody reads: the flush lasts until the deadline
        engine.broadcast("big", "x" * 8192)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    began = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            engine.close(timeout=2.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The interrupt reached the caller during the wait, not after the 2 s flush...
    assert time.monotonic() - began < 1.5
    assert engine.closed
    # ...and the engine finishes closing on its own.
    with pytest.raises(sse_engine.EngineClosedError):
        engine.broadcast("big", "late")
    wait_for(lambda: reasons == ["shutdown"], timeout=5, what="the shutdown disconnect")
    client.close()


def test_close_from_inside_a_callback():
    closed = threading.Event()
    engine = sse_engine.Engine(heartbeat=None)

    def on_connect(client):
        engine.close(timeout=0.5)  # on the callback thread: must not wait for itself
        closed.set()

    engine.on_connect = on_connect
    cid, raw = connect(engine)
    assert closed.wait(5)
    assert engine.closed
    raw.wait_eof()
    engine.close()
