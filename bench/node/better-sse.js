'use strict';
// Benchmark host: better-sse (npm) channels. GET /sse creates a session (data sent
// as text, not JSON) and registers it with one channel; GET /burst calls
// channel.broadcast() M times.

const { createChannel, createSession } = require('../../bindings-node/node_modules/better-sse');
const { burstParams, eventData, nowNs, pathOf, respond, start } = require('./common');

const channel = createChannel();

start('better-sse', async (req, res) => {
  const path = pathOf(req);
  if (path === '/sse') {
    req.socket.setNoDelay(true);
    const session = await createSession(req, res, { serializer: (data) => String(data) });
    channel.register(session);
  } else if (path === '/burst') {
    const params = burstParams(req.url);
    if (params.error) return respond(res, 400, `${params.error}\n`);
    for (let i = 0; i < params.count; i++) channel.broadcast(eventData(nowNs(), params.size));
    respond(res, 200);
  } else if (path === '/stats') {
    respond(res, 200, `kind better-sse\nconnections_open ${channel.sessionCount}\n`);
  } else {
    respond(res, 404);
  }
  return undefined;
});
