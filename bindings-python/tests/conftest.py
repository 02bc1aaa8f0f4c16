"""Shared helpers: real sockets, real server processes, bounded waits."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent

# Lines a server must never log during the tests.
ERROR_MARKERS = (
    "Traceback", "ERROR", "Error on request", "Exception", "CRITICAL", "exception",
    # gunicorn (debug level) when it wrote to or read from a socket the peer had left:
    "Ignoring EPIPE", "Ignoring socket not connected", "Ignoring connection reset",
    "premature client disconnection",
)


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def tcp_pair() -> Tuple[socket.socket, socket.socket]:
    """(server side, client side) of a fresh loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    return server, client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SSEParser:
    """Incremental parser of an event stream (optionally after an HTTP head)."""

    def __init__(self, expect_head: bool = True) -> None:
        self.buffer = b""
        self.head: Optional[bytes] = None if expect_head else b""
        self.raw = b""  # everything after the head
        self.events: List[Dict[str, str]] = []
        self.comments = 0
        self.chunked = False
        self.chunk_buffer = b""
        self.chunked_done = False

    def _dechunk(self, data: bytes) -> bytes:
        """Decodes HTTP/1.1 chunked framing (stream-mode servers use it)."""
        self.chunk_buffer += data
        out = b""
        while True:
            line_end = self.chunk_buffer.find(b"\r\n")
            if line_end < 0:
                return out
            size = int(self.chunk_buffer[:line_end].split(b";")[0], 16)
            if size == 0:
                self.chunked_done = True
                return out
            if len(self.chunk_buffer) < line_end + 2 + size + 2:
                return out
            out += self.chunk_buffer[line_end + 2 : line_end + 2 + size]
            self.chunk_buffer = self.chunk_buffer[line_end + 2 + size + 2 :]

    def feed(self, data: bytes) -> None:
        if self.head is None:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = self.buffer[: end + 4]
            data, self.buffer = self.buffer[end + 4 :], b""
            self.chunked = b"transfer-encoding: chunked" in self.head.lower()
        if self.chunked:
            data = self._dechunk(data)
        self.raw += data
        self.buffer += data
        text = self.buffer
        while b"\n\n" in text:
            block, text = text.split(b"\n\n", 1)
            event: Dict[str, str] = {}
            data_lines = []
            only_comments = True
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    continue
                only_comments = False
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data_lines.append(value)
                else:
                    event[name] = value
            if only_comments:
                self.comments += 1
                continue
            if data_lines:
                event["data"] = "\n".join(data_lines)
            self.events.append(event)
        self.buffer = text


class RawClient:
    """A raw-socket SSE client."""

    def __init__(self, sock: socket.socket, expect_head: bool = True) -> None:
        self.sock = sock
        self.parser = SSEParser(expect_head)
        self.eof = False

    @classmethod
    def get(cls, port: int, path: str, headers: Optional[Dict[str, str]] = None) -> "RawClient":
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return cls(sock)

    def pump(self, timeout: float) -> bool:
        """Reads what arrives within ``timeout``; False on timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not data:
            self.eof = True
            return False
        self.parser.feed(data)
        return True

    @property
    def received(self) -> int:
        return len(self.parser.raw) + len(self.parser.chunk_buffer)

    def read_head(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while self.parser.head is None:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"no response head (eof={self.eof}, got {self.parser.buffer!r})")
            self.pump(0.1)
        return self.parser.head

    def read_events(self, n: int, timeout: float = 5.0) -> List[Dict[str, str]]:
        deadline = time.monotonic() + timeout
        while len(self.parser.events) < n:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(
                    f"got {len(self.parser.events)} of {n} events (eof={self.eof}): {self.parser.raw!r}"
                )
            self.pump(0.1)
        return self.parser.events[:n]

    def wait_eof(self, timeout: float = 5.0) -> None:
        """Until the stream ends: end-of-file, or the last chunk of a chunked response
        (an ASGI server may keep the connection for the next request)."""
        deadline = time.monotonic() + timeout
        while not self.eof and not self.parser.chunked_done:
            if time.monotonic() > deadline:
                raise AssertionError("the stream did not end")
            try:
                self.pump(0.1)
            except ConnectionResetError:
                self.eof = True

    def quiet_for(self, seconds: float) -> bool:
        """True when nothing arrives (and no EOF) for ``seconds``."""
        deadline = time.monotonic() + seconds
        before = self.received
        while time.monotonic() < deadline:
            self.pump(max(0.01, deadline - time.monotonic()))
            if self.eof:
                return False
        return self.received == before

    def close(self) -> None:
        self.sock.close()


def http_request(port: int, method: str, path: str, body: bytes = b"", timeout: float = 5.0) -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class ServerProcess:
    """A real server in a subprocess; its output is kept for the no-error check."""

    def __init__(self, name: str, argv: List[str], cwd: Path, port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.log_path = log
        self.log_file = open(log, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            argv, cwd=str(cwd), stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited at start:\n{self.logs()}")
            try:
                status, _ = http_request(self.port, "GET", "/stats", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"{self.name} did not start within {timeout} s:\n{self.logs()}")

    def stats(self) -> dict:
        status, body = http_request(self.port, "GET", "/stats")
        assert status == 200, body
        return json.loads(body)

    def publish(self, channel: str, data: str, event: Optional[str] = None, id: Optional[str] = None) -> int:
        from urllib.parse import urlencode

        query = {"channel": channel}
        if event is not None:
            query["event"] = event
        if id is not None:
            query["id"] = id
        status, body = http_request(self.port, "POST", "/publish?" + urlencode(query), data.encode())
        assert status == 200, body
        return int(body)

    def logs(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                raise AssertionError(f"{self.name} did not stop within {timeout} s after SIGTERM:\n{self.logs()}")
        self.log_file.close()
        return self.proc.returncode


def assert_no_errors(logs: str, name: str) -> None:
    bad = [line for line in logs.splitlines() if any(m in line for m in ERROR_MARKERS)]
    assert not bad, f"{name} logged errors:\n" + "\n".join(bad) + "\n--- full log ---\n" + logs


@pytest.fixture
def engine():
    import sse_engine

    e = sse_engine.Engine(heartbeat=None)
    yield e
    e.close()
