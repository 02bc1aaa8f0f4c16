"""sse-engine from the standard library's http.server.

    python server.py [PORT]          # default 8000; 0 picks a free port

Routes (the same in every examples/python-* server):
  GET  /                    a page with an EventSource
  GET  /events?channel=C&user=U   the event stream (channel "news" by default);
                            Last-Event-ID (header or ?lastEventId=) replays what was missed
  POST /publish?channel=C&event=E&id=I   body = data; answers the number of recipients
  GET  /stats               the engine's counters as JSON
"""

import http.server
import json
import signal
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import sse_engine
from sse_engine.integrations.http_server import handover

PAGE = b"""<!doctype html><meta charset="utf-8"><title>sse-engine + http.server</title>
<h1>News</h1><ul id="news"></ul>
<form onsubmit="fetch('/publish',{method:'POST',body:msg.value});msg.value='';return false">
<input id="msg" placeholder="say something"><button>publish</button></form>
<script>
const es = new EventSource('/events');
es.onmessage = e => { const li = document.createElement('li'); li.textContent = e.data;
  document.getElementById('news').append(li); };
</script>
"""

engine = sse_engine.Engine(
    on_connect=lambda client: print(f"client {client} connected", flush=True),
    on_disconnect=lambda client, reason: print(f"client {client} left: {reason}", flush=True),
)


def first(query, name, default=None):
    return query.get(name, [default])[0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/events":
            # The engine writes the response head and the stream from here on.
            handover(self, engine, channels=first(query, "channel", "news"), user=first(query, "user"))
        elif url.path == "/stats":
            self.reply(200, json.dumps(engine.stats()).encode(), "application/json")
        elif url.path == "/":
            self.reply(200, PAGE, "text/html; charset=utf-8")
        else:
            self.reply(404, b"not found\n", "text/plain")

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != "/publish":
            self.reply(404, b"not found\n", "text/plain")
            return
        query = parse_qs(url.query)
        data = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        try:
            count = engine.broadcast(
                first(query, "channel", "news"), data, event=first(query, "event"), id=first(query, "id")
            )
        except ValueError as e:
            self.reply(400, f"{e}\n".encode(), "text/plain")
            return
        self.reply(200, f"{count}\n".encode(), "text/plain")

    def reply(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()
    server.server_close()
    engine.close(timeout=1.0)


if __name__ == "__main__":
    main()
