'use strict';
// Every Engine method over a plain `http` server and raw TCP clients (socket mode),
// lifecycle events, and the errors bad input raises.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { Engine, VERSION, DISCONNECT_REASONS } = require('..');
const { RawClient, listen, recorder, waitFor } = require('./helpers');

let engine;
let server;
let port;
let log;
/** Per-request connect options, chosen by the test through the query string. */
const routes = new Map();

before(async () => {
  engine = new Engine({ heartbeatMs: 0 });
  log = recorder(engine);
  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const options = routes.get(url.pathname) || {};
    try {
      engine.connect(req, res, options);
    } catch (err) {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`${err.code}: ${err.message}`);
      }
    }
  });
  port = await listen(server);
});

after(async () => {
  if (!engine.closed) await engine.close();
  server.close();
});

/** Connects a raw client to `path` (with options registered for it); returns [client, id]. */
async function connect(pathname, options = {}, clientOptions = {}) {
  routes.set(pathname, options);
  const before = new Set(engine.clients().map((c) => c.id));
  const client = new RawClient(port, { path: pathname, ...clientOptions });
  assert.strictEqual(await client.waitForHead(), 200);
  const info = await waitFor(() => engine.clients().find((c) => !before.has(c.id)), { what: 'the new client' });
  return [client, info.id];
}

test('version and disconnect reasons', () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
  assert.deepStrictEqual(DISCONNECT_REASONS, ['closed', 'error', 'slow', 'timeout', 'server', 'shutdown']);
});

test('connect hands a plain HTTP request over in socket mode with the SSE head', async () => {
  const [client, id] = await connect('/head', { channels: ['head'] });
  assert.strictEqual(client.headers['content-type'], 'text/event-stream');
  assert.strictEqual(client.headers['cache-control'], 'no-cache');
  assert.strictEqual(client.headers['x-accel-buffering'], 'no');
  assert.strictEqual(engine.modeOf(id), 'socket');
  await waitFor(() => log.find('connect', id), { what: 'the connect event' });
  assert.strictEqual(log.find('connect', id).mode, 'socket');
  client.close();
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect event' });
  assert.strictEqual(log.find('disconnect', id).reason, 'closed');
  assert.strictEqual(engine.modeOf(id), null);
});

test('send, sendToUser, broadcast, broadcastAll and broadcastWhere deliver', async () => {
  const [a, idA] = await connect('/send-a', { channels: ['room'], user: 'ann', metadata: { role: 'admin', tier: 1 } });
  const [b, idB] = await connect('/send-b', { channels: ['room'], user: 'bob', metadata: { role: 'user', tier: 2 } });
  assert.strictEqual(engine.send(idA, 'to a', { event: 'direct', id: 'd-1' }), true);
  assert.strictEqual(engine.send(idB, { json: [1, 2] }), true);
  assert.strictEqual(engine.sendToUser('bob', 'to bob'), 1);
  assert.strictEqual(engine.broadcast('room', 'line 1\nline 2', { event: 'multi', retry: 5000 }), 2);
  assert.strictEqual(engine.broadcastAll(Buffer.from('to all')), engine.clientCount());
  assert.strictEqual(engine.broadcastWhere('room', { role: 'admin' }, 'admins only'), 2);
  assert.strictEqual(engine.broadcastWhere('room', '{"tier":{"$in":[2,3]}}', 'tier 2+'), 2);
  await a.waitForEvents(4);
  await b.waitForEvents(5);
  assert.deepStrictEqual(a.events.map((e) => e.data), ['to a', 'line 1\nline 2', 'to all', 'admins only']);
  assert.deepStrictEqual(a.events[0], { data: 'to a', event: 'direct', id: 'd-1' });
  assert.strictEqual(a.events[1].event, 'multi');
  assert.strictEqual(a.parser.retry, 5000);
  assert.match(a.events[1].id, /^[0-9a-z]+-\d+$/, 'channel events get an engine id');
  assert.deepStrictEqual(b.events.map((e) => e.data), ['{"json":[1,2]}', 'to bob', 'line 1\nline 2', 'to all', 'tier 2+']);
  a.close();
  b.close();
});

test('subscribe and unsubscribe change what a client receives', async () => {
  const [client, id] = await connect('/sub', {});
  assert.strictEqual(engine.subscribe(id, 'extra'), true);
  assert.strictEqual(engine.subscribe(id, 'extra'), false, 'already a member');
  assert.strictEqual(engine.broadcast('extra', 'one'), 1);
  await client.waitForEvents(1);
  assert.strictEqual(engine.unsubscribe(id, 'extra'), true);
  assert.strictEqual(engine.unsubscribe(id, 'extra'), false);
  assert.strictEqual(engine.broadcast('extra', 'two'), 0);
  assert.strictEqual(engine.send(id, 'direct'), true);
  await client.waitForEvents(2);
  assert.deepStrictEqual(client.events.map((e) => e.data), ['one', 'direct']);
  client.close();
});

test('registry: getClient, clients, clientsIn, clientsOf, channels, counts, setMetadata', async () => {
  const [client, id] = await connect('/reg', { channels: ['reg-1', 'reg-2'], user: 'carol', metadata: { plan: 'pro' } });
  const info = engine.getClient(id);
  assert.strictEqual(info.id, id);
  assert.strictEqual(info.user, 'carol');
  assert.deepStrictEqual(info.channels, ['reg-1', 'reg-2']);
  assert.deepStrictEqual(info.metadata, { plan: 'pro' });
  // JavaScript names (camelCase), exactly these.
  assert.deepStrictEqual(Object.keys(info).sort(),
    ['channels', 'connectedAtMs', 'id', 'lastEventId', 'metadata', 'queuedBytes', 'remoteAddr', 'user']);
  assert.match(info.remoteAddr, /127\.0\.0\.1/);
  assert.ok(Math.abs(info.connectedAtMs - Date.now()) < 60000);
  assert.strictEqual(typeof info.queuedBytes, 'number');
  assert.strictEqual(info.lastEventId, null);
  assert.ok(engine.clients().some((c) => c.id === id));
  assert.deepStrictEqual(engine.clientsIn('reg-2').map((c) => c.id), [id]);
  assert.deepStrictEqual(engine.clientsOf('carol').map((c) => c.id), [id]);
  assert.deepStrictEqual(engine.clientsIn('nobody-here'), []);
  assert.strictEqual(engine.channelCount('reg-1'), 1);
  assert.strictEqual(engine.userCount('carol'), 1);
  assert.ok(engine.clientCount() >= 1);
  const channel = engine.channels().find((c) => c.name === 'reg-1');
  assert.deepStrictEqual(channel, { name: 'reg-1', members: 1, history: 0 });
  assert.strictEqual(engine.setMetadata(id, { plan: 'free' }), true);
  assert.deepStrictEqual(engine.getClient(id).metadata, { plan: 'free' });
  assert.strictEqual(engine.setMetadata(id, null), true);
  assert.strictEqual(engine.getClient(id).metadata, null);
  assert.strictEqual(engine.getClient(999999), null);
  client.close();
});

test('metadata numbers beyond 64 bits come back as the doubles JSON.parse gives', async () => {
  const [client, id] = await connect('/big-numbers', { channels: ['big'] });
  // 1e20 is an ordinary JavaScript number: JSON.stringify writes it as 21 digits.
  assert.strictEqual(engine.setMetadata(id, { n: 1e20, m: -1e25, i: 42, f: 1.5 }), true);
  assert.deepStrictEqual(engine.getClient(id).metadata, { n: 1e20, m: -1e25, i: 42, f: 1.5 });
  const text = '{"big": 123456789012345678901234567890, "list": [18446744073709551616]}';
  assert.strictEqual(engine.setMetadata(id, text), true);
  assert.deepStrictEqual(engine.getClient(id).metadata, JSON.parse(text));
  assert.deepStrictEqual(engine.clientsIn('big')[0].metadata, JSON.parse(text));
  assert.throws(() => engine.setMetadata(id, '{"n": 1e400}'), (err) => err.code === 'SSE_INVALID_ARGUMENT' && /out of range/.test(err.message));
  client.close();
});

test('history: configureChannel, closeChannel, removeEmptyChannels', async () => {
  engine.configureChannel('hist', { maxEvents: 2, maxAgeMs: 60000 });
  for (const n of [1, 2, 3]) engine.broadcast('hist', `h${n}`);
  assert.strictEqual(engine.channels().find((c) => c.name === 'hist').history, 2);
  const [client, id] = await connect('/close-channel', { channels: ['closing'] });
  assert.strictEqual(engine.closeChannel('closing', { disconnect: true }), 1);
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect of the closed channel' });
  assert.strictEqual(log.find('disconnect', id).reason, 'server');
  await waitFor(() => client.ended, { what: 'the end of the stream' });
  engine.broadcast('empty-1', 'kept in history');
  engine.configureChannel('empty-1', { maxEvents: 0, maxAgeMs: 0 });
  assert.ok(engine.removeEmptyChannels() >= 0);
  assert.strictEqual(engine.closeChannel('never-existed'), 0);
});

test('disconnect ends a client with reason server; unknown ids return false', async () => {
  const [client, id] = await connect('/disc', {});
  assert.strictEqual(engine.isConnected(id), true);
  assert.strictEqual(engine.disconnect(id), true);
  // Leaving from the moment disconnect() returned.
  assert.strictEqual(engine.isConnected(id), false);
  await waitFor(() => client.ended, { what: 'the end of the stream' });
  await waitFor(() => log.find('disconnect', id), { what: 'the disconnect event' });
  assert.strictEqual(log.find('disconnect', id).reason, 'server');
  assert.strictEqual(engine.disconnect(id), false);
  assert.strictEqual(engine.send(id, 'x'), false);
  assert.strictEqual(engine.subscribe(id, 'x'), false);
  assert.strictEqual(engine.unsubscribe(id, 'x'), false);
  assert.strictEqual(engine.setMetadata(id, { a: 1 }), false);
  assert.strictEqual(engine.getClient(id), null);
});

test('Last-Event-ID replays missed events; an unknown one raises gap', async () => {
  const [first, id1] = await connect('/replay', { channels: ['replay'] });
  engine.broadcast('replay', 'r1');
  await first.waitForEvents(1);
  const lastId = first.events[0].id;
  first.close();
  await waitFor(() => log.find('disconnect', id1), { what: 'the first disconnect' });
  engine.broadcast('replay', 'r2');
  engine.broadcast('replay', 'r3');
  const [second, id2] = await connect('/replay', { channels: ['replay'] }, { headers: { 'Last-Event-ID': lastId } });
  await second.waitForEvents(2);
  assert.deepStrictEqual(second.events.map((e) => e.data), ['r2', 'r3']);
  // The registry knows the last id the client has: that of r3.
  assert.strictEqual(engine.getClient(id2).lastEventId, second.events[1].id);
  second.close();
  // The query parameter works too (first connection of a page).
  const [third] = await connect(`/replay`, { channels: ['replay'] }, { path: `/replay?lastEventId=${encodeURIComponent(lastId)}` });
  await third.waitForEvents(2);
  assert.deepStrictEqual(third.events.map((e) => e.data), ['r2', 'r3']);
  third.close();
  const [gapped, gapId] = await connect('/replay', { channels: ['replay'] }, { headers: { 'Last-Event-ID': 'other-run-7' } });
  await gapped.waitForEvents(1);
  assert.strictEqual(gapped.events[0].event, 'sse-gap');
  assert.deepStrictEqual(JSON.parse(gapped.events[0].data), { lastEventId: 'other-run-7' });
  await waitFor(() => log.find('gap', gapId), { what: 'the gap event' });
  gapped.close();
});

test('Last-Event-ID from the query: the first value, trimmed (the engine rule)', async () => {
  const [first, id1] = await connect('/trim', { channels: ['trim'] });
  engine.broadcast('trim', 't1');
  await first.waitForEvents(1);
  const lastId = first.events[0].id;
  first.close();
  await waitFor(() => log.find('disconnect', id1), { what: 'the first disconnect' });
  engine.broadcast('trim', 't2');
  // Surrounding whitespace is trimmed (untrimmed, the id is unknown and gives a gap);
  // the first lastEventId wins over a later one.
  const query = `lastEventId=${encodeURIComponent(` ${lastId}\t`)}&lastEventId=other-run-1`;
  const [second, id2] = await connect('/trim', { channels: ['trim'] }, { path: `/trim?${query}` });
  await second.waitForEvents(1);
  assert.deepStrictEqual(second.events.map((e) => e.data), ['t2']);
  assert.strictEqual(log.find('gap', id2), undefined);
  second.close();
  // The header wins over the query; a blank one counts as none.
  const [third] = await connect('/trim', { channels: ['trim'] }, {
    path: `/trim?lastEventId=other-run-2`,
    headers: { 'Last-Event-ID': lastId },
  });
  await third.waitForEvents(1);
  assert.deepStrictEqual(third.events.map((e) => e.data), ['t2']);
  third.close();
  const [fourth] = await connect('/trim', { channels: ['trim'] }, {
    path: `/trim?lastEventId=${encodeURIComponent(lastId)}`,
    headers: { 'Last-Event-ID': ' ' },
  });
  await fourth.waitForEvents(1);
  assert.deepStrictEqual(fourth.events.map((e) => e.data), ['t2']);
  fourth.close();
});

test('headers set on res go out with the engine head; extra headers too', async () => {
  routes.set('/headers', { headers: { 'X-Extra': 'e' } });
  const server2 = http.createServer((req, res) => {
    res.setHeader('X-Framework', 'set-before');
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('Cache-Control', 'private'); // the engine's own wins
    engine.connect(req, res, { headers: [['X-Extra', 'e']] });
  });
  const port2 = await listen(server2);
  const client = new RawClient(port2);
  assert.strictEqual(await client.waitForHead(), 200);
  assert.strictEqual(client.headers['x-framework'], 'set-before');
  assert.strictEqual(client.headers['set-cookie'], 'a=1, b=2');
  assert.strictEqual(client.headers['x-extra'], 'e');
  assert.strictEqual(client.headers['cache-control'], 'no-cache');
  client.close();
  server2.close();
});

test('stats and metrics count what happened', () => {
  const stats = engine.stats();
  // JavaScript names (camelCase), exactly these.
  const counters = ['connectionsOpen', 'connectionsTotal', 'refusedTotal', 'eventsPublished', 'framesQueued',
    'bytesWritten', 'writeCalls', 'heartbeats', 'queueHighWater', 'eventsReplayed', 'gaps', 'reactorFailures'];
  assert.deepStrictEqual(Object.keys(stats).sort(), [...counters, 'disconnects'].sort());
  for (const key of counters) assert.strictEqual(typeof stats[key], 'number', key);
  assert.ok(stats.connectionsTotal >= 5);
  assert.ok(stats.eventsPublished > 0);
  assert.ok(stats.eventsReplayed >= 4);
  assert.ok(stats.gaps >= 1);
  assert.deepStrictEqual(Object.keys(stats.disconnects).sort(), [...DISCONNECT_REASONS].sort());
  assert.ok(stats.disconnects.server >= 2);
  const metrics = engine.metrics();
  assert.match(metrics, /^# (HELP|TYPE) sse_engine_/m);
  assert.match(metrics, /sse_engine_connections_total/);
});

test('bad input throws TypeError or RangeError naming the argument', () => {
  const typeError = (fn, pattern, code = 'SSE_INVALID_ARGUMENT') => assert.throws(fn, (err) => {
    assert.ok(err instanceof TypeError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.strictEqual(err.code, code);
    return true;
  });
  const rangeError = (fn, pattern) => assert.throws(fn, (err) => {
    assert.ok(err instanceof RangeError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.strictEqual(err.code, 'SSE_OUT_OF_RANGE');
    return true;
  });
  typeError(() => engine.send('1', 'x'), /"clientId" argument must be a number/);
  typeError(() => engine.broadcast(42, 'x'), /"channel" argument must be a string/);
  typeError(() => engine.broadcast('c', undefined), /"data" argument/);
  typeError(() => engine.broadcast('c', 'x', { event: 'a\nb' }), /event name must not contain CR or LF/);
  typeError(() => engine.broadcast('c', 'x', { id: 'a\rb' }), /event id must not contain CR or LF/);
  typeError(() => engine.broadcast('c', 'x', { event: 7 }), /"options.event" argument must be a string/);
  typeError(() => engine.broadcast('c', 'x', { colour: 'red' }), /unknown option "colour"/);
  typeError(() => engine.broadcast('', 'x'), /channel name must not be empty/);
  typeError(() => engine.sendToUser('', 'x'), /user key must not be empty/);
  typeError(() => engine.broadcastWhere('c', '[1]', 'x'), /filter must be a JSON object/);
  typeError(() => engine.broadcastWhere('c', 5, 'x'), /"filter" argument/);
  typeError(() => engine.setMetadata(1, '[]'), /metadata must be a JSON object/);
  typeError(() => engine.subscribe(1, null), /"channel" argument must be a string/);
  typeError(() => engine.connect({}, {}), /"req" argument/);
  typeError(() => new Engine({ heartbeatMs: '15s' }), /"options.heartbeatMs" argument must be a number/);
  typeError(() => new Engine({ gapEvent: 'bad\nname' }), /event name must not contain CR or LF/);
  rangeError(() => new Engine({ threads: 0 }), /threads must be between 1 and/);
  rangeError(() => new Engine({ maxQueueBytes: 10 }), /max_queue_bytes must be at least/);
  // Values JSON cannot hold: a cycle, a BigInt (data, metadata, filter).
  const cyclic = {};
  cyclic.self = cyclic;
  typeError(() => engine.broadcast('c', cyclic), /"data" argument cannot be serialized as JSON/);
  typeError(() => engine.broadcast('c', { n: 10n }), /"data" argument cannot be serialized as JSON: .*BigInt/);
  typeError(() => engine.broadcast('c', 10n), /"data" argument cannot be serialized as JSON/);
  typeError(() => engine.setMetadata(1, cyclic), /"metadata" argument cannot be serialized as JSON/);
  typeError(() => engine.broadcastWhere('c', { n: 1n }, 'x'), /"filter" argument cannot be serialized as JSON/);
  typeError(() => engine.broadcast('c', Buffer.from([0xff, 0xfe])), /not valid UTF-8/, 'SSE_INVALID_UTF8');
  rangeError(() => engine.send(-1, 'x'), /clientId must be a non-negative integer/);
  rangeError(() => engine.send(1.5, 'x'), /clientId must be a non-negative integer/);
  rangeError(() => engine.send(2 ** 60, 'x'), /clientId must be a non-negative integer/);
  rangeError(() => engine.broadcast('c', 'x', { retry: -5 }), /retry must be a non-negative integer/);
  rangeError(() => new Engine({ maxClients: -1 }), /maxClients must be a non-negative integer/);
  rangeError(() => engine.configureChannel('c', { maxEvents: 1.5, maxAgeMs: 1 }), /maxEvents must be/);
  assert.strictEqual(engine.send(123456789, 'x'), false, 'an unknown client id returns false');
});

test('a refused hand-over says whether the engine took the socket (fdTaken); the engine checks the socket', async () => {
  const fs = require('node:fs');
  const net = require('node:net');
  const limited = new Engine({ heartbeatMs: 0, maxClients: 0 });
  const n = limited._native;
  // Not a socket: refused by the engine's one check, the descriptor is untouched.
  const fd = fs.openSync(__filename, 'r');
  assert.throws(() => n.connectFd(fd, {}), (err) => {
    assert.strictEqual(err.code, 'SSE_BAD_SOCKET');
    assert.match(err.message, /regular file/);
    assert.strictEqual(err.fdTaken, false);
    return true;
  });
  assert.ok(fs.fstatSync(fd).isFile());
  fs.closeSync(fd);
  // A limit: the engine took its duplicate, answered 503 and closed it.
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise((resolve) => srv.once('connection', resolve));
  const client = net.connect(srv.address().port, '127.0.0.1');
  const socket = await accepted;
  assert.throws(() => n.connectFd(socket._handle.fd, {}), (err) => {
    assert.strictEqual(err.code, 'SSE_LIMIT_REACHED');
    assert.strictEqual(err.fdTaken, true);
    return true;
  });
  let answer = '';
  client.on('data', (chunk) => { answer += chunk; });
  await waitFor(() => answer.includes('\r\n\r\n'), { what: 'the 503 answer' });
  assert.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  socket.destroy();
  client.destroy();
  srv.close();
  await limited.close();
});

test('an unreferenced engine lets the process exit; ref() keeps it alive until close()', () => {
  const script = (body) => spawnSync(process.execPath, ['-e', `
    const { Engine } = require(${JSON.stringify(path.join(__dirname, '..'))});
    ${body}`], { encoding: 'utf8', timeout: 20000 });
  const unref = script(`new Engine(); setTimeout(() => console.log('timer done'), 50);`);
  assert.strictEqual(unref.status, 0, unref.stderr);
  assert.strictEqual(unref.stdout.trim(), 'timer done');
  const refd = script(`
    const e = new Engine().ref();
    setTimeout(() => { console.log('closing'); e.close().then(() => console.log('closed')); }, 300);`);
  assert.strictEqual(refd.status, 0, refd.stderr);
  assert.deepStrictEqual(refd.stdout.trim().split('\n'), ['closing', 'closed']);
  const unrefAgain = script(`new Engine().ref().unref();`);
  assert.strictEqual(unrefAgain.status, 0, unrefAgain.stderr);
  assert.ok(unref.signal === null && refd.signal === null && unrefAgain.signal === null, 'no run hung');
});

test('close() sends a last event, ends every client, resolves after their events; calls until then deliver nothing, later calls throw', async () => {
  const local = new Engine({ heartbeatMs: 0 });
  const events = recorder(local);
  const srv = http.createServer((req, res) => local.connect(req, res, { channels: ['bye'] }));
  const p = await listen(srv);
  const clients = [new RawClient(p), new RawClient(p)];
  for (const c of clients) await c.waitForHead();
  await waitFor(() => local.clientCount() === 2, { what: 'two clients' });
  const closing = local.close({ timeoutMs: 500, lastEvent: { data: 'bye', event: 'shutdown' } });
  assert.strictEqual(local.closed, true);
  assert.strictEqual(local.broadcast('bye', 'late'), 0, 'while close() runs nothing is delivered');
  assert.strictEqual(local.close(), closing, 'a second close() while the first runs waits for it');
  await closing;
  assert.strictEqual(events.filter((e) => e.type === 'disconnect' && e.reason === 'shutdown').length, 2,
    'every shutdown disconnect was emitted before close() resolved');
  for (const c of clients) {
    await c.waitForEvents(1);
    assert.deepStrictEqual(c.events[0], { data: 'bye', event: 'shutdown', id: undefined });
    await waitFor(() => c.ended, { what: 'the end of the stream' });
  }
  for (const call of [
    () => local.send(1, 'x'),
    () => local.broadcast('a', 'x'),
    () => local.clients(),
    () => local.subscribe(1, 'a'),
    () => local.connect({ headers: {} }, { writeHead() {} }),
  ]) {
    assert.throws(call, (err) => err instanceof Error && err.code === 'SSE_SHUT_DOWN' && /closed/.test(err.message));
  }
  await assert.rejects(local.close(), (err) => err.code === 'SSE_SHUT_DOWN');
  assert.strictEqual(local.stats().disconnects.shutdown, 2, 'stats still answer after close()');
  srv.close();
});
