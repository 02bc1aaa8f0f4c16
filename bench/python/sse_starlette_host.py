"""Benchmark host: sse-starlette on uvicorn, one ``asyncio.Queue`` per client (the
pattern its documentation shows): GET /sse registers a queue and returns an
``EventSourceResponse`` over a generator that awaits it; GET /burst puts each of the M
events into every client's queue. Pings are off (the engine hosts send no heartbeats
either)."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from sse_starlette.sse import EventSourceResponse  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

args = common.parse_args()
common.raise_nofile_limit()
queues: "set[asyncio.Queue]" = set()
counters = {"connections_total": 0, "events_published": 0}


async def sse(request):
    queue: asyncio.Queue = asyncio.Queue()
    queues.add(queue)
    counters["connections_total"] += 1

    async def events():
        try:
            while True:
                yield {"data": await queue.get()}
        finally:
            queues.discard(queue)

    return EventSourceResponse(events(), ping=24 * 3600)


async def burst(request):
    try:
        count, size = common.burst_params(request.url.query)
    except ValueError as e:
        return PlainTextResponse(f"{e}\n", status_code=400)
    for _ in range(count):
        data = common.event_data(common.now_ns(), size)
        for queue in queues:
            queue.put_nowait(data)
        counters["events_published"] += 1
    return PlainTextResponse("", headers={"Connection": "close"})


async def stats(request):
    return PlainTextResponse(
        f"kind sse-starlette\nconnections_open {len(queues)}\n"
        f"connections_total {counters['connections_total']}\n"
        f"events_published {counters['events_published']}\n"
    )


app = Starlette(routes=[Route("/sse", sse), Route("/burst", burst), Route("/stats", stats)])


if __name__ == "__main__":
    common.serve_asgi(app, args.port, args.watch_stdin, "sse-starlette (uvicorn)")
