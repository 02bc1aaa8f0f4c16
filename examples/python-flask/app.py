"""sse-engine from Flask, under the werkzeug development server or gunicorn.

    python app.py [PORT]                                     # werkzeug dev server
    gunicorn -w 1 -b 127.0.0.1:8000 app:app                  # gunicorn, sync worker
    gunicorn -w 1 -k gthread --threads 4 -b 127.0.0.1:8000 app:app

Routes (as in every examples/python-* server): GET / (page), GET /events?channel=C&user=U
(the stream; Last-Event-ID replays), POST /publish?channel=C&event=E&id=I (body = data),
GET /stats.

One engine per process, created in the worker (after gunicorn forked it), on first use.
With several gunicorn workers each has its own engine and clients: publish through
something every worker hears (or the cluster mode) — these examples use one worker.
"""

import sys
import threading

import flask

import sse_engine
from sse_engine.integrations import wsgi

app = flask.Flask(__name__)

_engine = None
_engine_lock = threading.Lock()


def engine() -> sse_engine.Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = sse_engine.Engine(
                on_disconnect=lambda client, reason: app.logger.info("client %s left: %s", client, reason)
            )
        return _engine


PAGE = """<!doctype html><meta charset="utf-8"><title>sse-engine + Flask</title>
<h1>News</h1><ul id="news"></ul>
<form onsubmit="fetch('/publish',{method:'POST',body:msg.value});msg.value='';return false">
<input id="msg" placeholder="say something"><button>publish</button></form>
<script>
const es = new EventSource('/events');
es.onmessage = e => { const li = document.createElement('li'); li.textContent = e.data;
  document.getElementById('news').append(li); };
</script>
"""


@app.get("/")
def index():
    return PAGE


@app.get("/events")
def events():
    args = flask.request.args
    # The engine owns the connection from here on and writes the response head itself;
    # what Flask returns goes to a placeholder, never to the client.
    wsgi.handover(
        flask.request.environ, engine(), channels=args.get("channel", "news"), user=args.get("user")
    )
    return ""  # goes to the placeholder, never to the client


@app.post("/publish")
def publish():
    args = flask.request.args
    try:
        count = engine().broadcast(
            args.get("channel", "news"),
            flask.request.get_data(as_text=True),
            event=args.get("event"),
            id=args.get("id"),
        )
    except ValueError as e:
        return f"{e}\n", 400
    return f"{count}\n"


@app.get("/stats")
def stats():
    return flask.jsonify(engine().stats())


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    app.run(host="127.0.0.1", port=port, threaded=True)
