"""Shared by the Python benchmark hosts: the same surface as the Rust bench host
(bench/src/host.rs), so ``sse-loadgen --host-cmd`` can drive them.

    python <host>.py [--port P] [--watch-stdin] [--kind K] [--threads T]

- prints ``READY port=<port> pid=<pid>`` as its first stdout line;
- GET /sse becomes an event stream (each host its own way);
- GET /burst?count=M&size=S publishes M events whose data is the send time in
  nanoseconds since the UNIX epoch, a space and ``x`` padding up to S bytes, then answers
  200 with an empty body;
- GET /stats answers ``name value`` lines;
- with --watch-stdin it exits when its stdin closes (the load generator died).
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import threading
import time
from urllib.parse import parse_qsl

MAX_BURST_EVENTS = 1_000_000
MAX_EVENT_SIZE = 1024 * 1024
CHANNEL = "bench"


class Args:
    port = 0
    watch_stdin = False
    threads = 1


def parse_args(argv=None) -> Args:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = Args()
    while argv:
        arg = argv.pop(0)
        if arg == "--port":
            args.port = int(argv.pop(0))
        elif arg == "--threads":
            args.threads = int(argv.pop(0))
        elif arg == "--kind":
            argv.pop(0)  # the load generator names the host; nothing to choose
        elif arg == "--watch-stdin":
            args.watch_stdin = True
        else:
            raise SystemExit(f"unknown argument {arg!r}")
    return args


def now_ns() -> int:
    """Nanoseconds since the UNIX epoch (CLOCK_REALTIME)."""
    return time.time_ns()


def event_data(send_ns: int, size: int) -> str:
    """The data of one benchmark event: the send time, a space, ``x`` padding to ``size``."""
    head = f"{send_ns} "
    return head if len(head) >= size else head + "x" * (size - len(head))


def burst_params(query: str):
    """(count, size) of /burst?count=M&size=S, or raises ValueError."""
    count, size = 20, 64
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in ("count", "size") or not value.isdigit():
            raise ValueError(f"bad burst parameter {name}={value!r}")
        if name == "count":
            count = int(value)
        else:
            size = int(value)
    if count > MAX_BURST_EVENTS or size > MAX_EVENT_SIZE:
        raise ValueError("burst too large")
    return count, size


def stats_text(kind: str, stats: dict) -> str:
    lines = [f"kind {kind}"]
    for key in ("connections_open", "connections_total", "refused_total", "events_published",
                "frames_queued", "bytes_written", "write_calls", "queue_high_water"):
        lines.append(f"{key} {stats[key]}")
    lines.append(f"disconnects_total {sum(stats['disconnects'].values())}")
    lines.append(f"events_replayed {stats['events_replayed']}")
    lines.append(f"gaps {stats['gaps']}")
    return "\n".join(lines) + "\n"


def raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listen(port: int) -> socket.socket:
    sock = socket.create_server(("127.0.0.1", port), backlog=4096)
    return sock


def ready(sock: socket.socket, name: str) -> None:
    port = sock.getsockname()[1]
    print(f"READY port={port} pid={os.getpid()}", flush=True)
    print(f"{name}: listening on 127.0.0.1:{port} (Python {sys.version.split()[0]})",
          file=sys.stderr, flush=True)


def watch_stdin(enabled: bool) -> None:
    """Exits the process when the load generator's end of our stdin closes."""
    if not enabled:
        return

    def watch():
        try:
            while sys.stdin.buffer.read(65536):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, name="watch-stdin", daemon=True).start()


def serve_asgi(app, port: int, watch: bool, name: str) -> None:
    """Serves the ASGI ``app`` with uvicorn on the host's socket (READY line, stdin watch)."""
    import uvicorn

    sock = listen(port)
    watch_stdin(watch)
    ready(sock, name)
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=4096,
                            timeout_keep_alive=5)
    uvicorn.Server(config).run(sockets=[sock])
