"""The engine runs beside Python: fan-out without the GIL, interpreter exit, fork."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import sse_engine

HERE = Path(__file__).resolve().parent


def test_fan_out_goes_on_while_another_thread_holds_the_gil():
    """Events are queued, then this thread holds the GIL in a busy loop (no thread
    switch for the whole loop). The clients (another process, tiny socket buffers, so
    the engine must keep writing as they read) get every event during the loop, and
    heartbeats keep coming."""
    clients, events, size = 4, 200, 4096
    engine = sse_engine.Engine(heartbeat=0.1, max_queue_bytes=4 * 1024 * 1024)
    listener = socket.create_server(("127.0.0.1", 0))
    reader = subprocess.Popen(
        [sys.executable, str(HERE / "gil_reader.py"), str(listener.getsockname()[1]),
         str(clients), str(events), "1.5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        listener.settimeout(10)
        for _ in range(clients):
            conn, _ = listener.accept()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            engine.connect(conn, channels=["busy"])
        assert reader.stdout.readline().strip() == "READY"
        payload = "x" * size
        for _ in range(events):
            assert engine.broadcast("busy", payload) == clients
        switch = sys.getswitchinterval()
        sys.setswitchinterval(100.0)  # no other Python thread runs until we are done
        try:
            reader.stdin.write("go\n")
            reader.stdin.flush()
            busy_start = time.time()
            busy_end = busy_start + 2.0
            while time.time() < busy_end:
                pass
        finally:
            sys.setswitchinterval(switch)
        out, _ = reader.communicate(timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
        engine.close()
        listener.close()
    report = json.loads(out)
    assert all(n == events for n in report["got"].values()), report["got"]
    for done_at in report["done_at"].values():
        assert busy_start <= done_at <= busy_end, (busy_start, done_at, busy_end)
    # After the burst the clients are idle and get a heartbeat every 0.1 s.
    assert all(n >= 3 for n in report["heartbeats"].values()), report


def run_script(code: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout,
    )


SETUP = """
import socket, sys, time, sse_engine
listener = socket.create_server(("127.0.0.1", 0))
peer = socket.create_connection(listener.getsockname())
conn, _ = listener.accept()
"""


def test_interpreter_exit_with_an_open_engine():
    started = time.monotonic()
    result = run_script(SETUP + """
engine = sse_engine.Engine(on_connect=lambda c: print("hello", c, flush=True),
                           on_disconnect=lambda c, r: print("bye", c, r, flush=True))
engine.connect(conn, channels=["x"])
engine.broadcast("x", "last words")
stream = engine.connect_stream(channels=["x"])
time.sleep(0.2)
# No close(): the interpreter exits with the engine, its threads and clients open.
""")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "hello 1" in result.stdout
    assert "bye 1 shutdown" in result.stdout
    assert time.monotonic() - started < 15


def test_interpreter_exit_from_an_exception_and_with_an_unreferenced_engine():
    result = run_script(SETUP + """
sse_engine.Engine(on_gap=print).connect(conn)   # dropped at once: collected, shut down
engine = sse_engine.Engine(on_connect=print)
import threading
def spam():
    try:
        while True:
            engine.broadcast_all("x")   # a thread still publishing at exit
    except RuntimeError:
        pass                            # the engine closed at exit
threading.Thread(target=spam, daemon=True).start()
time.sleep(0.05)
raise SystemExit(3)
""")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "Fatal" not in result.stderr


def test_exit_while_a_callback_runs():
    result = run_script(SETUP + """
def slow(client):
    time.sleep(0.3)
    print("callback finished", flush=True)
engine = sse_engine.Engine(on_connect=slow)
engine.connect(conn)
time.sleep(0.05)
""")
    assert result.returncode == 0, result.stderr
    assert "Fatal" not in result.stderr


def test_engine_after_fork_refuses_and_child_exits_cleanly():
    result = run_script(SETUP + """
import os
engine = sse_engine.Engine(on_connect=print)
engine.connect(conn, channels=["x"])
pid = os.fork()
if pid == 0:
    try:
        engine.broadcast("x", "from the child")
        os._exit(10)
    except RuntimeError as e:
        assert "another process" in str(e), e
    with sse_engine.Engine() as own:
        assert own.broadcast("x", "child's own engine") == 0
    sys.exit(0)   # normal interpreter exit: must not wait for the parent's threads
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
assert engine.broadcast("x", "parent still works") == 1
""", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "child 0" in result.stdout


def test_swap_at_the_descriptor_limit_leaves_the_socket_and_the_engine_untouched():
    """With one or two descriptors free, ``connect(sock, takeover="swap")`` (what the
    ``http.server`` and WSGI helpers do) cannot make its duplicate and placeholder: it
    raises ``OSError`` before the engine sees the connection, so the engine has no
    client, the peer got nothing, and the caller can still answer on the socket."""
    result = run_script(SETUP + """
import errno, os, resource
engine = sse_engine.Engine(heartbeat=None)
spare = os.open(os.devnull, os.O_RDONLY)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
used = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (used + 16, hard))
fillers = []
try:
    while True:
        fillers.append(os.dup(spare))   # take every descriptor there is...
except OSError as e:
    assert e.errno == errno.EMFILE, e
peer.settimeout(0.3)
for free in (1, 2):
    for fd in fillers[-free:]:      # ...but one or two
        os.close(fd)
    del fillers[-free:]
    before = conn.fileno()
    try:
        engine.connect(conn, channels=["c"], takeover="swap")
        raise AssertionError("connect succeeded with %d descriptor(s) free" % free)
    except OSError as e:
        assert e.errno == errno.EMFILE, e
    assert engine.client_count() == 0, free
    assert engine.stats()["connections_total"] == 0, free
    assert conn.fileno() == before
    try:
        got = peer.recv(100)
        raise AssertionError("the peer got %r with %d descriptor(s) free" % (got, free))
    except socket.timeout:
        pass
    for _ in range(free):           # fill up again for the next round
        fillers.append(os.dup(spare))
for fd in fillers:
    os.close(fd)
# The socket is still the caller's: it can answer (a host would write its 503 here)...
conn.sendall(b"HTTP/1.1 503 Service Unavailable\\r\\nContent-Length: 0\\r\\n\\r\\n")
assert peer.recv(100).startswith(b"HTTP/1.1 503"), "the caller's answer did not arrive"
# ...or, with descriptors to spare, hand it over after all.
other = socket.create_connection(listener.getsockname())
conn2, _ = listener.accept()
engine.connect(conn2, channels=["c"], takeover="swap")
other.settimeout(5)
assert other.recv(100).startswith(b"HTTP/1.1 200 OK"), "the hand-over failed"
assert engine.client_count() == 1
print("ok", flush=True)
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok", result.stdout


def test_sigint_during_close_leaves_the_engine_closed():
    """A KeyboardInterrupt (Ctrl-C) that arrives while ``close()`` waits for the flush
    reaches the caller, and ``closed`` says what is true: the engine is shut down."""
    result = run_script(SETUP + """
import os, signal, threading
engine = sse_engine.Engine(heartbeat=None, max_queue_bytes=8 * 1024 * 1024)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
engine.connect(conn, channels=["c"])
for _ in range(100):                  # queued bytes that nobody reads: the flush waits
    engine.broadcast("c", "x" * 16384)
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    engine.close(timeout=1.5)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print("closed", engine.closed, flush=True)
try:
    engine.broadcast("c", "after")
    print("still open", flush=True)
except sse_engine.EngineClosedError:
    print("engine closed", flush=True)
engine.close()                        # closing again does nothing
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["interrupted", "closed True", "engine closed"], result.stdout
