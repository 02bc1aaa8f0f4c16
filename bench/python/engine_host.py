"""Benchmark host: sse-engine driven from a Python server (stdlib ``http.server``).

GET /sse hands the connection over with ``sse_engine.integrations.http_server.handover``
(channel ``bench``, heartbeats off, the engine writes the response head; a
Last-Event-ID header or lastEventId query parameter is honoured). GET /burst calls
``engine.broadcast()`` M times in a loop. ``--threads T`` sets the reactor threads.
"""

import http.server
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import sse_engine  # noqa: E402
from sse_engine.integrations.http_server import handover  # noqa: E402

args = common.parse_args()
common.raise_nofile_limit()
engine = sse_engine.Engine(heartbeat=None, threads=args.threads)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/sse":
            handover(self, engine, channels=common.CHANNEL)
        elif url.path == "/burst":
            try:
                count, size = common.burst_params(url.query)
            except ValueError as e:
                return self.reply(400, f"{e}\n")
            broadcast, data, now = engine.broadcast, common.event_data, common.now_ns
            for _ in range(count):
                broadcast(common.CHANNEL, data(now(), size))
            self.reply(200, "")
        elif url.path == "/stats":
            self.reply(200, common.stats_text("py-engine", engine.stats()))
        else:
            self.reply(404, "")

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, *a):  # no per-request log lines
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 4096
    daemon_threads = True


def main():
    sock = common.listen(args.port)
    server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_address = sock.getsockname()
    common.watch_stdin(args.watch_stdin)
    common.ready(sock, "py-engine (http.server)")
    server.serve_forever()


if __name__ == "__main__":
    main()
