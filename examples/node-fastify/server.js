'use strict';
// sse-engine behind Fastify. The plugin adds `reply.sse(options)`; Fastify's hooks
// run first (here: an onRequest hook that rejects banned users).
//
//   (cd ../../bindings-node && npm install && npm run build)
//   npm install && npm start                  # plain HTTP/1.1: socket mode
//   TLS_KEY=key.pem TLS_CERT=cert.pem npm start   # HTTPS + HTTP/2: stream mode

const fs = require('node:fs');
const path = require('node:path');
const Fastify = require('fastify');
const { Engine } = require('sse-engine');
const { ssePlugin } = require('sse-engine/fastify');

const tls = process.env.TLS_KEY && process.env.TLS_CERT
  ? { key: fs.readFileSync(process.env.TLS_KEY), cert: fs.readFileSync(process.env.TLS_CERT), allowHTTP1: true }
  : null;
const fastify = Fastify({ logger: true, ...(tls ? { http2: true, https: tls } : {}) });
const engine = new Engine({ retryMs: 2000 });
engine.on('connect', (id, mode) => fastify.log.info({ id, mode }, 'sse client connected'));
engine.on('disconnect', (id, reason) => fastify.log.info({ id, reason }, 'sse client left'));

async function main() {
  await fastify.register(ssePlugin, { engine }); // closes the engine when Fastify closes
  const page = fs.readFileSync(path.join(__dirname, 'index.html'));
  fastify.get('/', (request, reply) => reply.type('text/html').send(page));
  fastify.get('/events', {
    onRequest: async (request, reply) => {
      if (request.query.user === 'banned') return reply.code(403).send({ error: 'go away' });
      return undefined;
    },
  }, (request, reply) => {
    const room = request.query.room || 'lobby';
    reply.header('X-Example', 'fastify');
    reply.sse({ channels: ['clock', `room:${room}`], user: request.query.user, metadata: { room } });
  });
  fastify.post('/say', async (request) => {
    const { room = 'lobby', user = 'someone', text = '' } = request.body || {};
    const delivered = engine.broadcast(`room:${room}`, { user, text: String(text).slice(0, 500) }, { event: 'chat' });
    return { delivered };
  });
  fastify.get('/stats', async () => ({ stats: engine.stats(), channels: engine.channels() }));
  const timer = setInterval(() => engine.broadcast('clock', { now: new Date().toISOString() }, { event: 'tick' }), 1000);
  fastify.addHook('onClose', async () => clearInterval(timer));
  await fastify.listen({ port: Number(process.env.PORT || 3000), host: '0.0.0.0' });
  process.on('SIGINT', () => fastify.close().then(() => process.exit(0)));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
