"""sse-engine from Tornado.

    python server.py [PORT]

Routes (as in every examples/python-* server): GET / (page), GET /events?channel=C&user=U
(the stream; Last-Event-ID replays), POST /publish?channel=C&event=E&id=I (body = data),
GET /stats.
"""

import asyncio
import json
import logging
import signal
import sys

import tornado.web

import sse_engine
from sse_engine.integrations.tornado import handover

PAGE = """<!doctype html><meta charset="utf-8"><title>sse-engine + Tornado</title>
<h1>News</h1><ul id="news"></ul>
<form onsubmit="fetch('/publish',{method:'POST',body:msg.value});msg.value='';return false">
<input id="msg" placeholder="say something"><button>publish</button></form>
<script>
const es = new EventSource('/events');
es.onmessage = e => { const li = document.createElement('li'); li.textContent = e.data;
  document.getElementById('news').append(li); };
</script>
"""


class Index(tornado.web.RequestHandler):
    def get(self):
        self.write(PAGE)


class Events(tornado.web.RequestHandler):
    def initialize(self, engine):
        self.engine = engine

    def get(self):
        # The handler is detached: Tornado does no more HTTP on this connection.
        handover(self, self.engine, channels=self.get_argument("channel", "news"),
                 user=self.get_argument("user", None))


class Publish(tornado.web.RequestHandler):
    def initialize(self, engine):
        self.engine = engine

    def post(self):
        try:
            count = self.engine.broadcast(
                self.get_argument("channel", "news"),
                self.request.body.decode(),
                event=self.get_argument("event", None),
                id=self.get_argument("id", None),
            )
        except ValueError as e:
            self.set_status(400)
            self.write(f"{e}\n")
            return
        self.write(f"{count}\n")


class Stats(tornado.web.RequestHandler):
    def initialize(self, engine):
        self.engine = engine

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(self.engine.stats()))


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    engine = sse_engine.Engine(
        callback_loop=asyncio.get_running_loop(),
        on_disconnect=lambda client, reason: print(f"client {client} left: {reason}", flush=True),
    )
    app = tornado.web.Application([
        (r"/", Index),
        (r"/events", Events, {"engine": engine}),
        (r"/publish", Publish, {"engine": engine}),
        (r"/stats", Stats, {"engine": engine}),
    ])
    server = app.listen(port, address="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    await stop.wait()
    server.stop()
    engine.close(timeout=1.0)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
