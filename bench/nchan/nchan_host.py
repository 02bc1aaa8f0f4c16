"""Benchmark host: nchan (nginx + the nchan module, Debian ``nginx-light`` and
``libnginx-mod-nchan``) behind the same HTTP surface as the other hosts.

    python3 bench/nchan/nchan_host.py --kind nchan --port 0 --watch-stdin [--threads T]

One nginx in single-process mode (``daemon off; master_process off;``) from a config
generated into a temporary prefix directory. This process *becomes* nginx (``execv``),
so the load generator's child is nginx itself: its RSS and CPU are what gets measured
(the load generator reads them from the pid it spawned), and ``READY port=… pid=…``
names the same pid. Before the exec it forks a small Python helper that:

- serves GET /burst?count=M&size=S and GET /stats, which nginx proxies to it (upstream
  keep-alive over a Unix socket). /burst publishes M events, one POST each to nchan's
  HTTP publisher (an nginx server on another Unix socket, over one keep-alive
  connection), each event's data stamped with ``time.time_ns()`` just before its POST,
  then answers 200 with an empty body; /stats reads ``nchan_stub_status`` and answers
  ``name value`` lines (``kind nchan``, ``connections_open`` = nchan subscribers);
- waits until the whole path answers, then prints the READY line;
- watches stdin (--watch-stdin): when the load generator's end closes, it kills nginx;
- gets SIGTERM when nginx dies (PR_SET_PDEATHSIG), and removes the prefix directory.

GET /sse is an nchan EventSource subscriber on channel ``bench`` (no pings). nginx itself
gets PR_SET_PDEATHSIG=SIGKILL, so it also dies with whatever started it.
"""

from __future__ import annotations

import ctypes
import http.client
import http.server
import os
import resource
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

import common  # noqa: E402

NAME = "nchan"
MODULE_CANDIDATES = (
    "/usr/lib/nginx/modules/ngx_nchan_module.so",  # Debian's libnginx-mod-nchan
    "/usr/share/nginx/modules/ngx_nchan_module.so",
)
# nchan keeps the last N messages of a channel in shared memory, each for at most the
# timeout (what a subscriber resuming with Last-Event-ID can get back). 1000 is 50 bursts
# of 20 events, or 10 s of the paced scenario.
MESSAGE_BUFFER_LENGTH = 1000
MESSAGE_TIMEOUT = "120s"
RESERVED_MEMORY = "256M"  # nchan's shared memory (message buffers); untouched pages cost no RSS
MAX_BODY = common.MAX_EVENT_SIZE + 64 * 1024


def fail(message: str) -> "None":
    print(f"nchan_host: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def find_nginx() -> str:
    nginx = os.environ.get("NCHAN_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not (os.path.isfile(nginx) and os.access(nginx, os.X_OK)):
        fail("nginx is not installed (Debian package nginx-light)")
    return nginx


def find_module() -> str:
    override = os.environ.get("NCHAN_MODULE")
    for path in ((override,) if override else MODULE_CANDIDATES):
        if os.path.isfile(path):
            return path
    fail("the nchan module ngx_nchan_module.so is not installed "
         "(Debian package libnginx-mod-nchan)")


def remove_stale_prefixes() -> None:
    """Prefix dirs whose nginx is gone (left only when the helper was SIGKILLed)."""
    for entry in Path(tempfile.gettempdir()).glob("nchan-host-*"):
        try:
            pid = int((entry / "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except (OSError, ValueError):
            pass  # not ours to judge (no pid file yet, or another user's)


def nginx_conf(prefix: Path, module: str, port: int, connections: int) -> str:
    tmp = prefix / "tmp"
    return f"""\
load_module {module};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {connections + 64};
pid {prefix}/nginx.pid;
lock_file {prefix}/nginx.lock;
error_log stderr warn;

events {{
    worker_connections {connections};
    multi_accept on;
}}

http {{
    access_log off;
    error_log stderr warn;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    tcp_nodelay on;
    default_type text/plain;
    nchan_max_reserved_memory {RESERVED_MEMORY};

    upstream helper {{
        server unix:{prefix}/helper.sock;
        keepalive 4;
    }}

    # The one port the load generator knows.
    server {{
        listen 127.0.0.1:{port} backlog=4096;

        location = /sse {{
            nchan_subscriber eventsource;
            nchan_channel_id {common.CHANNEL};
            nchan_subscriber_first_message newest;
            nchan_eventsource_ping_interval 0;
            nchan_subscriber_timeout 0;
        }}

        location ~ ^/(burst|stats)$ {{
            proxy_pass http://helper;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 600s;
            proxy_buffering off;
            # The load generator reads the answer to its end: close after it.
            keepalive_timeout 0;
        }}

        location / {{
            return 404;
        }}
    }}

    # Internal: the helper publishes and reads the status here.
    server {{
        listen unix:{prefix}/publish.sock;
        keepalive_timeout 3600s;
        keepalive_requests 1000000000;
        client_max_body_size {MAX_BODY};
        client_body_buffer_size {MAX_BODY};

        location = /pub {{
            nchan_publisher http;
            nchan_channel_id {common.CHANNEL};
            nchan_message_buffer_length {MESSAGE_BUFFER_LENGTH};
            nchan_message_timeout {MESSAGE_TIMEOUT};
        }}

        location = /status {{
            nchan_stub_status;
        }}
    }}
}}
"""


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 600):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class Publisher:
    """One keep-alive connection to nchan's publisher location; one user at a time."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        self.conn = UnixHTTPConnection(path)
        self.published = 0

    def _request(self, method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "text/plain"} if body is not None else {}
        for attempt in (0, 1):
            try:
                self.conn.request(method, url, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                # nginx closed the idle keep-alive connection: open a new one, once.
                self.conn.close()
                self.conn = UnixHTTPConnection(self.path)
                if attempt:
                    raise

    def burst(self, count: int, size: int) -> None:
        with self.lock:
            for _ in range(count):
                data = common.event_data(common.now_ns(), size).encode()
                status, body = self._request("POST", "/pub", data)
                if status not in (201, 202):
                    raise RuntimeError(f"nchan publisher answered {status}: {body[:200]!r}")
                self.published += 1

    def status(self) -> dict[str, int]:
        """nchan_stub_status as ``{name_with_underscores: value}`` (sizes in bytes)."""
        with self.lock:
            status, body = self._request("GET", "/status")
        if status != 200:
            raise RuntimeError(f"nchan_stub_status answered {status}")
        values = {}
        for line in body.decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            value = value.strip()
            key = name.strip().replace(" ", "_")
            if value.endswith("K") and value[:-1].isdigit():
                values[key + "_bytes"] = int(value[:-1]) * 1024
            elif value.isdigit():
                values[key] = int(value)
        return values


publisher: Publisher | None = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # nginx keeps its upstream connections alive

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/burst":
            try:
                count, size = common.burst_params(url.query)
            except ValueError as e:
                return self.reply(400, f"{e}\n")
            try:
                publisher.burst(count, size)
            except Exception as e:  # noqa: BLE001 - the load generator prints it
                return self.reply(502, f"publish failed: {e}\n")
            self.reply(200, "")
        elif url.path == "/stats":
            try:
                nchan = publisher.status()
            except Exception as e:  # noqa: BLE001
                return self.reply(502, f"stats failed: {e}\n")
            lines = [f"kind {NAME}", f"connections_open {nchan.get('subscribers', 0)}",
                     f"events_published {publisher.published}"]
            lines += [f"nchan_{k} {v}" for k, v in nchan.items()
                      if not k.startswith(("redis", "total_redis")) and "interprocess" not in k]
            self.reply(200, "\n".join(lines) + "\n")
        else:
            self.reply(404, "")

    def reply(self, status: int, body: str):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self):  # Unix socket: no client address
        return "nginx"

    def log_message(self, *a):  # no per-request log lines
        pass


class HelperServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 64


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork
PR_SET_PDEATHSIG = 1


def set_pdeathsig(sig: int) -> None:
    """Asks the kernel for ``sig`` when our parent (the thread that forked us) exits."""
    if _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def wait_ready(port: int, nginx_pid: int, deadline: float, stopping) -> bool:
    """Until a /stats through nginx's TCP port (nginx → helper → nchan) answers 200;
    False if nginx died, we were asked to stop, or 15 s passed."""
    while not stopping[0] and os.getppid() == nginx_pid:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            if answer.startswith(b"HTTP/1.1 200"):
                return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            print("nchan_host: nginx did not answer /stats within 15 s", file=sys.stderr)
            return False
        time.sleep(0.05)
    return False


def helper(args, prefix: Path, port: int, port_guard: socket.socket,
           server: HelperServer, nginx_pid: int, version: str, module: str) -> int:
    """The forked helper: serves /burst and /stats, prints READY, cleans up."""
    global publisher
    stopping = [False]  # a plain flag: safe to set from a signal handler

    def on_signal(signum, frame):
        stopping[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    set_pdeathsig(signal.SIGTERM)  # nginx died (or was killed): clean up and go
    try:
        if os.getppid() != nginx_pid:
            return 1  # nginx died before we asked
        publisher = Publisher(str(prefix / "publish.sock"))
        threading.Thread(target=server.serve_forever, name="helper-http",
                         daemon=True).start()
        if args.watch_stdin:
            def watch():
                try:
                    while sys.stdin.buffer.read(65536):
                        pass
                finally:
                    stopping[0] = True
            threading.Thread(target=watch, name="watch-stdin", daemon=True).start()
        ok = wait_ready(port, nginx_pid, time.monotonic() + 15, stopping)
        port_guard.close()
        if not ok:
            return 1
        print(f"READY port={port} pid={nginx_pid}", flush=True)
        print(f"nchan host: {version}, {module}, prefix {prefix}, 127.0.0.1:{port}, "
              f"nginx pid {nginx_pid}, helper pid {os.getpid()}", file=sys.stderr, flush=True)
        while not stopping[0] and os.getppid() == nginx_pid:
            time.sleep(0.2)
        return 0
    finally:
        # SIGKILL, not SIGTERM: nginx 1.22 + nchan 1.3.6 in single-process mode aborts
        # with "free(): double free detected" on its exit path anyway, and there is
        # nothing to save (the prefix dir goes below, the shared memory is anonymous).
        if os.getppid() == nginx_pid:
            os.kill(nginx_pid, signal.SIGKILL)
        shutil.rmtree(prefix, ignore_errors=True)


def reserve_port(port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEADDR socket on 127.0.0.1:port (port 0: the kernel
    picks). nginx (SO_REUSEADDR too) can bind and listen on the same port while we hold
    it, and no other socket is given the port in between; the helper closes it once
    nginx answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def main() -> int:
    args = common.parse_args()
    nginx = find_nginx()
    module = find_module()
    common.raise_nofile_limit()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    connections = max(1024, soft - 64) if soft != resource.RLIM_INFINITY else 65536
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()

    remove_stale_prefixes()
    prefix = Path(tempfile.mkdtemp(prefix="nchan-host-"))
    try:
        (prefix / "tmp").mkdir()
        (prefix / "owner.pid").write_text(str(os.getpid()))  # nginx's pid, after the exec
        try:
            port_guard = reserve_port(args.port)
        except OSError as e:
            fail(f"cannot bind 127.0.0.1:{args.port}: {e.strerror}")
        port = port_guard.getsockname()[1]
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_conf(prefix, module, port, connections))
        server = HelperServer(str(prefix / "helper.sock"), Handler)
    except BaseException:
        shutil.rmtree(prefix, ignore_errors=True)
        raise
    sys.stdout.flush()
    sys.stderr.flush()

    nginx_pid = os.getpid()
    # No thread exists yet: a plain fork is safe.
    if os.fork() == 0:
        code = 1
        try:
            code = helper(args, prefix, port, port_guard, server, nginx_pid, version, module)
        except BaseException as e:  # noqa: BLE001 - report, clean up, exit
            print(f"nchan_host helper: {e!r}", file=sys.stderr)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            # os._exit: the watch-stdin thread is blocked reading stdin, which a normal
            # interpreter shutdown would wait on.
            os._exit(code)

    # This process becomes nginx. Its stdout goes to stderr (the READY pipe is the
    # helper's), its stdin to /dev/null (the helper watches the real one).
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    set_pdeathsig(signal.SIGKILL)  # dies with its launcher (sent when that thread exits)
    os.execv(nginx, [nginx, "-p", f"{prefix}/", "-e", "stderr", "-c", str(conf)])


if __name__ == "__main__":
    sys.exit(main())
