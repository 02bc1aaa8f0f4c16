'use strict';
// Benchmark host: the plain Node way. GET /sse writes the SSE head and keeps the
// response in a Set; GET /burst writes each event to every response with
// res.write() (one write per event per client), on the event loop.

const { burstParams, eventData, nowNs, pathOf, respond, start } = require('./common');

const clients = new Set();

start('plain-write', (req, res) => {
  const path = pathOf(req);
  if (path === '/sse') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    clients.add(res);
    res.on('close', () => clients.delete(res));
  } else if (path === '/burst') {
    const params = burstParams(req.url);
    if (params.error) return respond(res, 400, `${params.error}\n`);
    for (let i = 0; i < params.count; i++) {
      const frame = `data: ${eventData(nowNs(), params.size)}\n\n`;
      for (const client of clients) client.write(frame);
    }
    respond(res, 200);
  } else if (path === '/stats') {
    respond(res, 200, `kind plain-write\nconnections_open ${clients.size}\n`);
  } else {
    respond(res, 404);
  }
  return undefined;
});
