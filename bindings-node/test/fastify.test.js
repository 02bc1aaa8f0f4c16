'use strict';
// A real Fastify server with the plugin: `reply.sse()` after Fastify's hooks, headers
// set with `reply.header()`, the `eventsource` client, HTTP/2 + TLS in stream mode,
// and the engine closed with Fastify.

const { test } = require('node:test');
const assert = require('node:assert');
const http2 = require('node:http2');
const Fastify = require('fastify');
const { EventSource } = require('eventsource');
const { Engine } = require('..');
const { ssePlugin } = require('../lib/fastify');
const { RawClient, recorder, selfSignedCert, waitFor } = require('./helpers');

async function start(fastifyOptions = {}) {
  const engine = new Engine({ heartbeatMs: 0 });
  const log = recorder(engine);
  const fastify = Fastify(fastifyOptions);
  const hooks = [];
  await fastify.register(ssePlugin, { engine });
  fastify.addHook('onRequest', async (request, reply) => {
    hooks.push('onRequest');
    if (request.headers.authorization !== 'Bearer ok') {
      reply.code(401).send({ error: 'unauthorized' });
      return reply;
    }
    request.user = 'erin';
    return undefined;
  });
  fastify.addHook('preHandler', async (request, reply) => {
    hooks.push('preHandler');
    reply.header('X-Fastify-Hook', 'yes');
  });
  fastify.get('/events', (request, reply) => {
    const id = reply.sse({ channels: ['feed'], user: request.user });
    hooks.push(`handler ${id}`);
  });
  fastify.get('/async-events', async (request, reply) => {
    await new Promise((resolve) => setImmediate(resolve));
    reply.sse({ channels: ['feed'] });
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return { engine, log, fastify, hooks, port: fastify.server.address().port };
}

test('reply.sse() runs after Fastify hooks and carries reply headers', async () => {
  const { engine, fastify, hooks, port } = await start();
  const denied = new RawClient(port, { path: '/events' });
  assert.strictEqual(await denied.waitForHead(), 401, 'an onRequest hook still answers');
  denied.close();
  const client = new RawClient(port, { path: '/events', headers: { Authorization: 'Bearer ok' } });
  assert.strictEqual(await client.waitForHead(), 200);
  assert.strictEqual(client.headers['content-type'], 'text/event-stream');
  assert.strictEqual(client.headers['x-fastify-hook'], 'yes');
  const id = engine.clientsIn('feed')[0].id;
  assert.deepStrictEqual(hooks.slice(-3), ['onRequest', 'preHandler', `handler ${id}`]);
  assert.strictEqual(engine.getClient(id).user, 'erin');
  assert.strictEqual(engine.modeOf(id), 'socket');
  assert.strictEqual(fastify.sseEngine, engine);
  engine.broadcast('feed', 'from fastify');
  await client.waitForEvents(1);
  assert.strictEqual(client.events[0].data, 'from fastify');
  client.close();
  await fastify.close();
  assert.strictEqual(engine.closed, true, 'the engine closes with Fastify');
});

test('an EventSource through an async Fastify handler', async () => {
  const { engine, log, fastify, port } = await start();
  const es = new EventSource(`http://127.0.0.1:${port}/async-events`, {
    fetch: (url, init) => fetch(url, { ...init, headers: { ...init.headers, Authorization: 'Bearer ok' } }),
  });
  const received = [];
  es.onmessage = (e) => received.push(e.data);
  await waitFor(() => log.find('connect'), { what: 'the connect event' });
  engine.broadcast('feed', 'hello es');
  await waitFor(() => received.length === 1, { what: 'the event' });
  assert.deepStrictEqual(received, ['hello es']);
  es.close();
  await waitFor(() => log.find('disconnect'), { what: 'the disconnect' });
  await fastify.close();
});

test('Fastify over HTTP/2 with TLS serves the stream in stream mode', async () => {
  const { key, cert } = selfSignedCert();
  const { engine, log, fastify, port } = await start({ http2: true, https: { key, cert } });
  const session = http2.connect(`https://localhost:${port}`, { rejectUnauthorized: false });
  const stream = session.request({ ':path': '/events', authorization: 'Bearer ok' });
  const headers = await new Promise((resolve) => stream.once('response', resolve));
  assert.strictEqual(headers[':status'], 200);
  assert.strictEqual(headers['content-type'], 'text/event-stream');
  assert.strictEqual(headers['x-fastify-hook'], 'yes');
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    body += chunk;
  });
  const { id } = await waitFor(() => log.find('connect'), { what: 'the connect event' });
  assert.strictEqual(log.find('connect').mode, 'stream');
  engine.broadcast('feed', 'over h2', { event: 'h2' });
  await waitFor(() => body.includes('data: over h2'), { what: 'the event over HTTP/2' });
  assert.match(body, /event: h2\ndata: over h2\n\n/);
  stream.close();
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect' });
  assert.strictEqual(log.find('disconnect', id).reason, 'closed');
  session.close();
  await fastify.close();
});
