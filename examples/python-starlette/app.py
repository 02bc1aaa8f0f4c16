"""sse-engine from Starlette (or FastAPI) on an ASGI server, in stream mode.

    uvicorn app:app --port 8000
    hypercorn app:app --bind 127.0.0.1:8000

ASGI servers expose no socket, so the engine drives each client in stream mode: it keeps
the client's channels, history and Last-Event-ID replay, heartbeats, limits and
disconnect detection, and the server writes the bytes. Sending is the same as in raw
mode. Routes (as in every examples/python-* server): GET / (page), GET /events?channel=C
&user=U, POST /publish?channel=C&event=E&id=I (body = data), GET /stats.

On shutdown the engine closes every stream (the lifespan and `close_on_server_exit`),
so the server does not wait for clients that never leave.
"""

import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

import sse_engine
from sse_engine.integrations.asgi import EventStream, close_on_server_exit

PAGE = """<!doctype html><meta charset="utf-8"><title>sse-engine + Starlette</title>
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
    on_disconnect=lambda client, reason: print(f"client {client} left: {reason}", flush=True),
)
# uvicorn / hypercorn wait for open responses before the lifespan ends: close the
# engine (ending every stream) as soon as the server is asked to stop.
close_on_server_exit(engine)


async def index(request: Request):
    return HTMLResponse(PAGE)


async def events(request: Request):
    q = request.query_params
    return EventStream(engine, channels=q.get("channel", "news"), user=q.get("user"))


async def publish(request: Request):
    q = request.query_params
    data = (await request.body()).decode()
    try:
        count = engine.broadcast(q.get("channel", "news"), data, event=q.get("event"), id=q.get("id"))
    except ValueError as e:
        return PlainTextResponse(f"{e}\n", status_code=400)
    return PlainTextResponse(f"{count}\n")


async def stats(request: Request):
    return JSONResponse(engine.stats())


@contextlib.asynccontextmanager
async def lifespan(app):
    yield
    engine.close(timeout=1.0)


app = Starlette(
    routes=[
        Route("/", index),
        Route("/events", events),
        Route("/publish", publish, methods=["POST"]),
        Route("/stats", stats),
    ],
    lifespan=lifespan,
)
