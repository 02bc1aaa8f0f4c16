"""Framework integrations: each hands the connection over the way its server allows.

| server                                   | module                                 | how                                  |
|------------------------------------------|----------------------------------------|--------------------------------------|
| stdlib ``http.server``                   | :mod:`.http_server`                    | ``handler.connection``, dup2-swap    |
| WSGI: werkzeug dev server, gunicorn sync and gthread (Flask, ...) | :mod:`.wsgi` | ``environ['werkzeug.socket']`` / ``environ['gunicorn.socket']``, dup2-swap |
| aiohttp                                  | :mod:`.aiohttp`                        | transport socket ``dup()``, ``transport.close()`` |
| Tornado                                  | :mod:`.tornado`                        | ``handler.detach()``                 |
| ASGI: uvicorn, hypercorn (Starlette, FastAPI) | :mod:`.asgi`                      | stream mode: the engine drives the client, the server writes the bytes |

After a hand-over the server neither writes to nor shuts down the client's stream. Bytes
the server's parser already read past the request head (pipelined requests) stay with
the server; EventSource clients do not pipeline.

Each helper reads ``Last-Event-ID`` from the request unless given, by the engine's rule
(:func:`resume_id`): the header wins; else the first ``lastEventId`` query parameter (a
first connection cannot set the header); surrounding ASCII whitespace is trimmed; empty
means none. Response heads and the 503 answer come from the engine too
(:func:`stream_head`, :func:`busy_answer`).
"""

from ._common import SSE_HEADERS, busy_answer, resume_id, stream_head

__all__ = ["SSE_HEADERS", "busy_answer", "resume_id", "stream_head"]
