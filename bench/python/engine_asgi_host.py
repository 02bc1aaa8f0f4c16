"""Benchmark host: sse-engine in stream mode under uvicorn (Starlette), the way ASGI
apps use it: GET /sse returns ``sse_engine.integrations.asgi.EventStream`` (the engine
keeps the client, uvicorn writes the bytes); GET /burst calls ``engine.broadcast()`` M
times."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

import sse_engine  # noqa: E402
from sse_engine.integrations.asgi import EventStream  # noqa: E402

args = common.parse_args()
common.raise_nofile_limit()
engine = sse_engine.Engine(heartbeat=None, threads=args.threads)


async def sse(request):
    return EventStream(engine, channels=common.CHANNEL)


async def burst(request):
    try:
        count, size = common.burst_params(request.url.query)
    except ValueError as e:
        return PlainTextResponse(f"{e}\n", status_code=400)
    for _ in range(count):
        engine.broadcast(common.CHANNEL, common.event_data(common.now_ns(), size))
    return PlainTextResponse("", headers={"Connection": "close"})


async def stats(request):
    return PlainTextResponse(common.stats_text("py-engine-asgi", engine.stats()))


app = Starlette(routes=[Route("/sse", sse), Route("/burst", burst), Route("/stats", stats)])


if __name__ == "__main__":
    common.serve_asgi(app, args.port, args.watch_stdin, "py-engine-asgi (uvicorn)")
