"""sse-engine from aiohttp.

    python server.py [PORT]

Routes (as in every examples/python-* server): GET / (page), GET /events?channel=C&user=U
(the stream; Last-Event-ID replays), POST /publish?channel=C&event=E&id=I (body = data),
GET /stats.
"""

import logging
import sys

from aiohttp import web

import sse_engine
from sse_engine.integrations import aiohttp as sse_aiohttp

PAGE = """<!doctype html><meta charset="utf-8"><title>sse-engine + aiohttp</title>
<h1>News</h1><ul id="news"></ul>
<form onsubmit="fetch('/publish',{method:'POST',body:msg.value});msg.value='';return false">
<input id="msg" placeholder="say something"><button>publish</button></form>
<script>
const es = new EventSource('/events');
es.onmessage = e => { const li = document.createElement('li'); li.textContent = e.data;
  document.getElementById('news').append(li); };
</script>
"""

ENGINE = web.AppKey("engine", sse_engine.Engine)


async def index(request):
    return web.Response(text=PAGE, content_type="text/html")


async def events(request):
    q = request.query
    # The engine takes the connection over; the returned response is never written.
    return sse_aiohttp.response(
        request, request.app[ENGINE], channels=q.get("channel", "news"), user=q.get("user")
    )


async def publish(request):
    q = request.query
    data = await request.text()
    try:
        count = request.app[ENGINE].broadcast(
            q.get("channel", "news"), data, event=q.get("event"), id=q.get("id")
        )
    except ValueError as e:
        return web.Response(status=400, text=f"{e}\n")
    return web.Response(text=f"{count}\n")


async def stats(request):
    return web.json_response(request.app[ENGINE].stats())


async def engine_context(app):
    loop = __import__("asyncio").get_running_loop()
    # Callbacks delivered on this event loop.
    app[ENGINE] = sse_engine.Engine(
        callback_loop=loop,
        on_disconnect=lambda client, reason: print(f"client {client} left: {reason}", flush=True),
    )
    yield
    app[ENGINE].close(timeout=1.0)


def make_app():
    app = web.Application()
    app.cleanup_ctx.append(engine_context)
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.router.add_post("/publish", publish)
    app.router.add_get("/stats", stats)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    web.run_app(make_app(), host="127.0.0.1", port=port)
