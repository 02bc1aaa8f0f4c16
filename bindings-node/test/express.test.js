'use strict';
// A real Express server with the `sse()` handler, the `eventsource` npm client and a
// raw TCP client: delivery, Last-Event-ID replay across a reconnect, the hand-over's
// effect on Node (no close events for the app, no FIN/RST, nothing kept), refusals.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const express = require('express');
const { EventSource } = require('eventsource');
const { Engine } = require('..');
const { sse } = require('../lib/express');
const { RawClient, listen, recorder, sleep, waitFor } = require('./helpers');

let engine;
let server;
let port;
let log;
const appCloses = [];
const connected = [];
/** The socket of each request, by URL. */
const sockets = new Map();

before(async () => {
  engine = new Engine({ heartbeatMs: 0 });
  log = recorder(engine);
  const app = express();
  // The app's own middleware: headers it sets, and close listeners the hand-over must
  // not fire.
  app.use((req, res, next) => {
    res.set('X-Request-Id', 'req-42');
    sockets.set(req.url, req.socket);
    for (const [emitter, name] of [[req, 'req'], [res, 'res']]) {
      emitter.on('close', () => appCloses.push(`${name} close ${req.url}`));
    }
    req.on('aborted', () => appCloses.push(`req aborted ${req.url}`));
    res.on('finish', () => appCloses.push(`res finish ${req.url}`));
    next();
  });
  app.get('/events', sse(engine, {
    channels: (req) => [req.query.room || 'lobby'],
    user: async (req) => req.get('x-user') || undefined,
    metadata: (req) => ({ room: req.query.room || 'lobby' }),
    retry: 200,
    onConnect: (id, req) => connected.push({ id, url: req.url }),
  }));
  app.get('/too-late', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.flushHeaders();
    try {
      engine.connect(req, res);
      res.end('accepted');
    } catch (err) {
      res.end(`refused ${err.code}: ${err.message}`);
    }
  });
  app.post('/events', sse(engine, { channels: ['lobby'] }));
  app.use((err, req, res, next) => {
    res.status(400).type('text/plain').send(`${err.code}: ${err.message}`);
    void next;
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = server.address().port;
});

after(async () => {
  if (!engine.closed) await engine.close();
  server.close();
});

/** An EventSource that records what it receives. */
function eventSource(url) {
  const es = new EventSource(url);
  es.received = [];
  es.opens = 0;
  es.onopen = () => {
    es.opens += 1;
  };
  es.onmessage = (e) => es.received.push({ data: e.data, id: e.lastEventId, type: e.type });
  es.addEventListener('note', (e) => es.received.push({ data: e.data, id: e.lastEventId, type: e.type }));
  return es;
}

test('an EventSource gets events through the Express handler', async () => {
  const es = eventSource(`http://127.0.0.1:${port}/events?room=kitchen`);
  await waitFor(() => es.opens === 1, { what: 'the stream to open' });
  const { id } = await waitFor(() => connected.find((c) => c.url.includes('kitchen')), { what: 'onConnect' });
  assert.deepStrictEqual(engine.getClient(id).channels, ['kitchen']);
  assert.deepStrictEqual(engine.getClient(id).metadata, { room: 'kitchen' });
  assert.strictEqual(engine.broadcast('kitchen', { dish: 'soup' }), 1);
  assert.strictEqual(engine.send(id, 'just for you', { event: 'note', id: 'n-1' }), true);
  await waitFor(() => es.received.length === 2, { what: 'two events' });
  assert.strictEqual(es.received[0].data, '{"dish":"soup"}');
  assert.deepStrictEqual(es.received[1], { data: 'just for you', id: 'n-1', type: 'note' });
  es.close();
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect' });
});

test('Last-Event-ID replay through Express when the EventSource reconnects', async () => {
  const es = eventSource(`http://127.0.0.1:${port}/events?room=replay`);
  await waitFor(() => es.opens === 1, { what: 'the stream to open' });
  const first = await waitFor(() => connected.find((c) => c.url.includes('replay')), { what: 'onConnect' });
  engine.broadcast('replay', 'before-1');
  engine.broadcast('replay', 'before-2');
  await waitFor(() => es.received.length === 2, { what: 'the first events' });
  // The server ends the stream; events are published while the client is away.
  assert.strictEqual(engine.disconnect(first.id), true);
  await waitFor(() => log.find('disconnect', first.id), { what: 'the disconnect' });
  engine.broadcast('replay', 'missed-1');
  engine.broadcast('replay', 'missed-2');
  // The EventSource comes back by itself (retry: 200 ms) with Last-Event-ID.
  await waitFor(() => es.opens === 2, { what: 'the reconnect' });
  engine.broadcast('replay', 'live');
  await waitFor(() => es.received.length === 5, { what: 'replayed and live events' });
  assert.deepStrictEqual(es.received.map((e) => e.data), ['before-1', 'before-2', 'missed-1', 'missed-2', 'live']);
  const ids = es.received.map((e) => Number(e.id.split('-').pop()));
  assert.deepStrictEqual(ids, [ids[0], ids[0] + 1, ids[0] + 2, ids[0] + 3, ids[0] + 4], 'in order, once each');
  es.close();
});

test('the hand-over fires none of the app close listeners and keeps nothing in Node', async () => {
  const before = appCloses.length;
  const client = new RawClient(port, { path: '/events?room=quiet', headers: { 'X-User': 'dora' } });
  assert.strictEqual(await client.waitForHead(), 200);
  assert.strictEqual(client.headers['x-request-id'], 'req-42', 'headers set by the app go out');
  assert.strictEqual(client.headers['x-powered-by'], 'Express');
  const { id } = await waitFor(() => connected.find((c) => c.url.includes('quiet')), { what: 'onConnect' });
  assert.strictEqual(engine.getClient(id).user, 'dora');
  await sleep(100);
  assert.deepStrictEqual(appCloses.slice(before), [], 'no close/aborted/finish on req or res');
  // Node's side is gone: its socket is destroyed, released by the HTTP server and the
  // response, and the parser went back to Node's pool.
  const socket = sockets.get('/events?room=quiet');
  assert.strictEqual(socket.destroyed, true);
  assert.strictEqual(socket.parser, null);
  assert.strictEqual(socket._httpMessage, null);
  const serverListeners = ['data', 'end', 'close', 'drain', 'error', 'timeout']
    .flatMap((event) => socket.listeners(event).map((fn) => fn.name))
    .filter((name) => /socketOn|onSocket|onServerResponse/.test(name));
  assert.deepStrictEqual(serverListeners, [], 'the HTTP server let go of the socket');
  // The connection itself was neither ended nor reset: the stream goes on.
  assert.strictEqual(client.ended, false, 'no FIN');
  assert.strictEqual(client.error, null, 'no RST');
  engine.broadcast('quiet', 'still here');
  await client.waitForEvents(1);
  assert.strictEqual(client.events[0].data, 'still here');
  // When the client leaves, the engine reports it; the app's listeners still stay quiet.
  client.close();
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect' });
  assert.strictEqual(log.find('disconnect', id).reason, 'closed');
  await sleep(50);
  assert.deepStrictEqual(appCloses.slice(before), []);
});

test('headers already sent: connect refuses with a clear error', async () => {
  const client = new RawClient(port, { path: '/too-late' });
  assert.strictEqual(await client.waitForHead(), 200);
  await waitFor(() => client.raw.includes('refused'), { what: 'the refusal' });
  assert.match(client.raw, /refused SSE_HEADERS_SENT: the response head was already sent/);
  client.close();
});

test('a request with a body is refused', async () => {
  // A GET with a body (raw client), and a POST through fetch.
  const client = new RawClient(port, { path: '/events', body: 'hello' });
  assert.strictEqual(await client.waitForHead(), 400);
  await waitFor(() => client.raw.includes('SSE_REQUEST_HAS_BODY'), { what: 'the refusal' });
  client.close();
  const res = await fetch(`http://127.0.0.1:${port}/events`, { method: 'POST', body: 'payload' });
  assert.strictEqual(res.status, 400);
  assert.match(await res.text(), /SSE_REQUEST_HAS_BODY: the request has a body/);
});

test('a limit refusal answers 503 and is not an error for the app', async () => {
  const limited = new Engine({ heartbeatMs: 0, maxClients: 1, busyRetryAfterSecs: 7 });
  const app = express();
  const errors = [];
  app.get('/e', sse(limited));
  app.use((err, req, res, next) => {
    errors.push(err);
    next(err);
  });
  const srv = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => srv.once('listening', resolve));
  const p = srv.address().port;
  const first = new RawClient(p, { path: '/e' });
  assert.strictEqual(await first.waitForHead(), 200);
  const second = new RawClient(p, { path: '/e' });
  assert.strictEqual(await second.waitForHead(), 503);
  assert.strictEqual(second.headers['retry-after'], '7');
  await waitFor(() => second.ended, { what: 'the end of the refused response' });
  assert.deepStrictEqual(errors, []);
  assert.strictEqual(limited.stats().refusedTotal, 1);
  first.close();
  await limited.close();
  srv.close();
});
