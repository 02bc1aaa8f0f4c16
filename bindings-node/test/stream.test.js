'use strict';
// Stream mode: an `https` server (self-signed certificate made here) and an HTTP/2
// server. The engine keeps the client's state; JavaScript writes its bytes to `res`,
// honouring backpressure (`drain`) and `close`.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const https = require('node:https');
const http2 = require('node:http2');
const { Engine } = require('..');
const { RawClient, SseParser, listen, recorder, selfSignedCert, sleep, waitFor } = require('./helpers');

let tls;
before(() => {
  tls = selfSignedCert();
});

/** An engine and a server of `kind` whose every request is handed over. */
async function setup(kind, engineOptions = {}) {
  const engine = new Engine({ heartbeatMs: 0, ...engineOptions });
  const log = recorder(engine);
  const responses = new Map();
  const handler = (req, res) => {
    try {
      responses.set(engine.connect(req, res, { channels: ['s'], retry: 1000 }), res);
    } catch (err) {
      // A limit refusal was answered 503 already.
      if (err.code !== 'SSE_LIMIT_REACHED') throw err;
    }
  };
  const server = kind === 'https'
    ? https.createServer(tls, handler)
    : kind === 'http2' ? http2.createSecureServer(tls, handler) : http.createServer(handler);
  const port = await listen(server);
  return { engine, log, responses, server, port };
}

/** An https SSE client; `paused` leaves the response unread until `resume()`. */
function httpsClient(port, { paused = false, headers = {} } = {}) {
  const parser = new SseParser();
  const client = { parser, status: null, headers: null, ended: false, response: null };
  client.request = https.get({ host: '127.0.0.1', port, path: '/sse', rejectUnauthorized: false, headers }, (res) => {
    client.status = res.statusCode;
    client.headers = res.headers;
    client.response = res;
    res.setEncoding('utf8');
    if (paused) res.pause();
    client.body = '';
    res.on('data', (chunk) => {
      client.body += chunk;
      parser.feed(chunk);
    });
    res.on('end', () => {
      client.ended = true;
    });
  });
  client.request.on('error', () => {});
  return client;
}

test('https: stream mode delivers, with the SSE head written by the host', async () => {
  const { engine, log, server, port } = await setup('https');
  const client = httpsClient(port);
  const { id } = await waitFor(() => log.find('connect'), { what: 'the connect event' });
  assert.strictEqual(log.find('connect').mode, 'stream');
  assert.strictEqual(engine.modeOf(id), 'stream');
  await waitFor(() => client.status !== null, { what: 'the response head' });
  assert.strictEqual(client.status, 200);
  assert.strictEqual(client.headers['content-type'], 'text/event-stream');
  assert.strictEqual(client.headers['cache-control'], 'no-cache');
  assert.strictEqual(engine.send(id, 'one'), true);
  assert.strictEqual(engine.broadcast('s', 'two', { event: 'second' }), 1);
  await waitFor(() => client.parser.events.length === 2, { what: 'two events' });
  assert.deepStrictEqual(client.parser.events.map((e) => e.data), ['one', 'two']);
  assert.strictEqual(client.parser.retry, 1000);
  assert.strictEqual(engine.getClient(id).remoteAddr, null);
  // The engine ends the client: what was queued arrives, then the response ends.
  engine.send(id, 'last words');
  engine.disconnect(id);
  await waitFor(() => client.ended, { what: 'the end of the response' });
  assert.strictEqual(client.parser.events.at(-1).data, 'last words');
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect' });
  assert.strictEqual(log.find('disconnect', id).reason, 'server');
  await engine.close();
  server.close();
});

test('https: backpressure holds bytes in the engine, not in Node, until the client reads', async () => {
  const { engine, log, responses, server, port } = await setup('https', { maxQueueBytes: 64 * 1024 * 1024 });
  const client = httpsClient(port, { paused: true });
  const { id } = await waitFor(() => log.find('connect'), { what: 'the connect event' });
  await waitFor(() => client.response !== null, { what: 'the response head' });
  const res = responses.get(id);
  const payload = 'x'.repeat(1000);
  const events = 16 * 1024; // 16 MiB: far more than socket buffers hold
  for (let i = 0; i < events; i++) engine.send(id, `${i} ${payload}`);
  // The host stops taking while `res` is full: the rest waits in the engine's queue.
  await waitFor(() => engine.getClient(id).queuedBytes > 1024 * 1024, { what: 'bytes held by the engine' });
  await sleep(200);
  assert.ok(res.writableLength <= 256 * 1024, `Node buffered only about one chunk (${res.writableLength} B)`);
  assert.ok(engine.getClient(id).queuedBytes > 1024 * 1024);
  client.response.resume();
  await waitFor(() => client.parser.events.length === events, { timeoutMs: 30000, what: `${events} events` });
  client.parser.events.forEach((e, i) => assert.ok(e.data.startsWith(`${i} `), `event ${i} in order`));
  assert.strictEqual(engine.getClient(id).queuedBytes, 0);
  // The client goes away: 'close' on the response ends the engine's client.
  client.request.destroy();
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect' });
  assert.strictEqual(log.find('disconnect', id).reason, 'closed');
  await engine.close();
  server.close();
});

test('HTTP/2: stream mode with flow-control backpressure, replay and close', async () => {
  const { engine, log, responses, server, port } = await setup('http2', { maxQueueBytes: 16 * 1024 * 1024 });
  const session = http2.connect(`https://localhost:${port}`, { rejectUnauthorized: false });
  const open = (headers = {}) => {
    const stream = session.request({ ':path': '/sse', ...headers });
    const c = { stream, parser: new SseParser(), headers: null, ended: false };
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      c.headers = h;
    });
    stream.on('data', (chunk) => c.parser.feed(chunk));
    stream.on('end', () => {
      c.ended = true;
    });
    stream.on('error', () => {});
    return c;
  };
  const a = open();
  const { id } = await waitFor(() => log.find('connect'), { what: 'the connect event' });
  await waitFor(() => a.headers !== null, { what: 'the response head' });
  assert.strictEqual(a.headers[':status'], 200);
  assert.strictEqual(a.headers.connection, undefined, 'no connection-specific header over HTTP/2');
  a.stream.pause();
  const events = 4000;
  for (let i = 0; i < events; i++) engine.broadcast('s', `${i} ${'y'.repeat(500)}`);
  await waitFor(() => engine.getClient(id).queuedBytes > 256 * 1024, { what: 'bytes held by the engine' });
  assert.ok(responses.get(id).writableLength <= 256 * 1024);
  a.stream.resume();
  await waitFor(() => a.parser.events.length === events, { timeoutMs: 30000, what: `${events} events` });
  a.parser.events.forEach((e, i) => assert.ok(e.data.startsWith(`${i} `), `event ${i} in order`));
  // A second stream on the same session resumes from an id: replay works in stream mode.
  const lastSeen = a.parser.events[events - 3].id;
  const b = open({ 'last-event-id': lastSeen });
  await waitFor(() => b.parser.events.length === 2, { what: 'the replay' });
  assert.deepStrictEqual(b.parser.events.map((e) => e.data.split(' ')[0]), [`${events - 2}`, `${events - 1}`]);
  // close() delivers a last event to stream clients too, then ends their responses.
  await engine.close({ lastEvent: { data: 'bye' } });
  await waitFor(() => a.ended && b.ended, { what: 'both responses to end' });
  assert.strictEqual(a.parser.events.at(-1).data, 'bye');
  assert.strictEqual(b.parser.events.at(-1).data, 'bye');
  assert.strictEqual(log.filter((e) => e.type === 'disconnect' && e.reason === 'shutdown').length, 2);
  session.close();
  server.close();
});

test('mode: stream works over plain http too, and behaves like socket mode', async () => {
  const engine = new Engine({ heartbeatMs: 0 });
  const log = recorder(engine);
  const server = http.createServer((req, res) => {
    const mode = req.url.includes('stream') ? 'stream' : 'socket';
    engine.connect(req, res, { channels: ['both'], mode, headers: { 'X-Mode': mode } });
  });
  const port = await listen(server);
  const socketClient = new RawClient(port, { path: '/socket' });
  const streamClient = new RawClient(port, { path: '/stream' });
  assert.strictEqual(await socketClient.waitForHead(), 200);
  assert.strictEqual(await streamClient.waitForHead(), 200);
  assert.strictEqual(socketClient.headers['x-mode'], 'socket');
  assert.strictEqual(streamClient.headers['x-mode'], 'stream');
  await waitFor(() => log.filter((e) => e.type === 'connect').length === 2, { what: 'two connects' });
  assert.deepStrictEqual(log.filter((e) => e.type === 'connect').map((e) => e.mode).sort(), ['socket', 'stream']);
  engine.broadcast('both', 'same\nfor both', { id: 'x-1', event: 'e' });
  await socketClient.waitForEvents(1);
  await streamClient.waitForEvents(1);
  assert.deepStrictEqual(socketClient.events, streamClient.events);
  socketClient.close();
  streamClient.close();
  await waitFor(() => log.filter((e) => e.type === 'disconnect').length === 2, { what: 'two disconnects' });
  assert.deepStrictEqual(log.filter((e) => e.type === 'disconnect').map((e) => e.reason), ['closed', 'closed']);
  await engine.close();
  server.close();
});

test('stream mode: a limit refusal answers 503 itself', async () => {
  const { engine, server, port } = await setup('https', { maxClients: 0, busyRetryAfterSecs: 3 });
  const client = httpsClient(port);
  await waitFor(() => client.status !== null, { what: 'the answer' });
  assert.strictEqual(client.status, 503);
  assert.strictEqual(client.headers['retry-after'], '3');
  // The engine's one 503 answer: the same text and headers as in socket mode.
  assert.strictEqual(client.headers.connection, 'close');
  assert.strictEqual(client.headers['cache-control'], 'no-cache');
  assert.strictEqual(client.headers['content-type'], 'text/plain; charset=utf-8');
  await waitFor(() => client.ended, { what: 'the end of the answer' });
  assert.strictEqual(client.body, 'the server is at capacity, retry later\n');
  await engine.close();
  server.close();
});

test('HTTP/2 stream mode: the 503 answer has no Connection header', async () => {
  const { engine, server, port } = await setup('http2', { maxClients: 0, busyRetryAfterSecs: 4 });
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  session.on('error', () => {});
  const stream = session.request({ ':path': '/sse' });
  const headers = await new Promise((resolve) => stream.once('response', resolve));
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    body += chunk;
  });
  await new Promise((resolve) => stream.once('end', resolve));
  assert.strictEqual(headers[':status'], 503);
  assert.strictEqual(headers['retry-after'], '4');
  assert.strictEqual(headers.connection, undefined);
  assert.strictEqual(body, 'the server is at capacity, retry later\n');
  session.close();
  await engine.close();
  server.close();
});
