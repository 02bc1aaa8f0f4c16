'use strict';
// Benchmark host: Fastify 5 with the official @fastify/sse plugin, used as its README
// shows. GET /sse is an SSE-only route (heartbeats off, data written verbatim rather
// than JSON-encoded) that keeps the reply open and in a Set; GET /burst calls
// reply.sse.send({ data }) for every event and client without awaiting each send, then
// answers once all the sends have settled (Promise.allSettled: every write was taken by
// its socket, or failed because the client left).

const http = require('node:http');
const Fastify = require('../../bindings-node/node_modules/fastify');
const fastifySse = require('../../bindings-node/node_modules/@fastify/sse');
const { burstParams, eventData, nowNs, serve } = require('./common');

const identity = (data) => data;
const clients = new Set();

async function main() {
  let server;
  // Fastify serves through a plain node:http server that common.js listens with (same
  // address, backlog, READY line and --watch-stdin as the other hosts).
  const app = Fastify({
    serverFactory: (handler) => {
      server = http.createServer(handler);
      return server;
    },
  });
  await app.register(fastifySse);

  app.get('/sse', { sse: { kind: 'only', heartbeat: false, serializer: identity } }, async (request, reply) => {
    request.raw.socket.setNoDelay(true);
    reply.sse.keepAlive();
    clients.add(reply);
    reply.sse.onClose(() => clients.delete(reply));
    // The plugin writes the response head with the first event; the load generator (like
    // an EventSource's `open`) waits for the head, so commit and flush it now.
    reply.sse.sendHeaders();
    reply.raw.flushHeaders();
  });

  app.get('/burst', async (request, reply) => {
    const params = burstParams(request.url);
    reply.header('Connection', 'close').type('text/plain');
    if (params.error) return reply.code(400).send(`${params.error}\n`);
    const sends = [];
    for (let i = 0; i < params.count; i++) {
      const data = eventData(nowNs(), params.size);
      for (const client of clients) sends.push(client.sse.send({ data }));
    }
    await Promise.allSettled(sends);
    return '';
  });

  app.get('/stats', async (request, reply) => {
    reply.header('Connection', 'close').type('text/plain');
    return `kind fastify-sse\nconnections_open ${clients.size}\n`;
  });

  await app.ready();
  serve('fastify-sse', server);
}

main().catch((error) => {
  process.stderr.write(`fastify-sse: ${error.stack}\n`);
  process.exit(1);
});
