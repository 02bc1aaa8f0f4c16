'use strict';
// engine.broadcastMany over a plain `http` server and raw TCP clients: each item reaches
// its channel's members in order with its id, as broadcast() one by one would; a bad
// item throws and publishes nothing; replay sees a batch as its single events.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { Engine } = require('..');
const { RawClient, listen, waitFor, sleep } = require('./helpers');

let engine;
let server;
let port;

before(async () => {
  engine = new Engine({ heartbeatMs: 0 });
  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    engine.connect(req, res, { channels: url.searchParams.getAll('channel') });
  });
  port = await listen(server);
});

after(async () => {
  if (!engine.closed) await engine.close();
  server.close();
});

/** A raw client on `channels` (query `channel=`), its head read. */
async function open(channels, headers = {}) {
  const query = channels.map((c) => `channel=${encodeURIComponent(c)}`).join('&');
  const before = engine.channelCount(channels[0]);
  const client = new RawClient(port, { path: `/sse?${query}`, headers });
  assert.strictEqual(await client.waitForHead(), 200);
  await waitFor(() => engine.channelCount(channels[0]) > before, { what: 'the new client' });
  return client;
}

const seqOf = (id) => Number(id.slice(id.lastIndexOf('-') + 1));

test('each item reaches its channel in order, with the ids broadcast() one by one gives', async () => {
  const a = await open(['m-a']);
  const ab = await open(['m-a', 'm-b']);
  const b = await open(['m-b']);
  const published = engine.stats().eventsPublished;
  const count = engine.broadcastMany([
    { channel: 'm-a', data: 'one' },
    { channel: 'm-b', data: { n: 2 } },
    { channel: 'm-a', data: Buffer.from('three'), id: 'mine' },
    { channel: 'm-nobody', data: 'four' },
    { channel: 'm-b', data: 'five\nsix', event: 'note', retry: 1500 },
  ]);
  assert.strictEqual(count, 2 + 2 + 2 + 0 + 2);
  assert.strictEqual(engine.stats().eventsPublished, published + 5);
  await a.waitForEvents(2);
  await ab.waitForEvents(4);
  await b.waitForEvents(2);
  assert.deepStrictEqual(a.events.map((e) => e.data), ['one', 'three']);
  assert.deepStrictEqual(ab.events.map((e) => e.data), ['one', '{"n":2}', 'three', 'five\nsix']);
  assert.deepStrictEqual(b.events.map((e) => e.data), ['{"n":2}', 'five\nsix']);
  assert.strictEqual(a.events[1].id, 'mine');
  assert.strictEqual(b.events[1].event, 'note');
  assert.strictEqual(b.parser.retry, 1500);
  // One engine number per item, in order; the item nobody got took its number too.
  const first = seqOf(a.events[0].id);
  assert.strictEqual(seqOf(b.events[0].id), first + 1);
  assert.strictEqual(seqOf(b.events[1].id), first + 4);
  assert.deepStrictEqual(ab.events.map((e) => e.id), [a.events[0].id, b.events[0].id, 'mine', b.events[1].id]);
  for (const c of [a, ab, b]) c.close();
});

test('a bad item throws naming it, and nothing is published', async () => {
  const c = await open(['bad-a']);
  const published = engine.stats().eventsPublished;
  const typeError = (items, pattern, code = 'SSE_INVALID_ARGUMENT') => assert.throws(() => engine.broadcastMany(items), (err) => {
    assert.ok(err instanceof TypeError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.strictEqual(err.code, code);
    return true;
  });
  const ok = { channel: 'bad-a', data: 'fine' };
  typeError('not an array', /"items" argument must be an array/);
  typeError([ok, null], /"items\[1\]" argument must be an object/);
  typeError([ok, { channel: 7, data: 'x' }], /"items\[1\]\.channel" argument must be a string/);
  typeError([ok, ok, { channel: 'bad-a' }], /"items\[2\]\.data" argument/);
  typeError([{ channel: 'bad-a', data: Buffer.from([0xff]) }], /"items\[0\]\.data" argument is not valid UTF-8/, 'SSE_INVALID_UTF8');
  typeError([ok, { channel: 'bad-a', data: 'x', colour: 'red' }], /"items\[1\]" argument has an unknown key "colour"/);
  typeError([ok, { channel: 'bad-a', data: 'x', event: 5 }], /"items\[1\]\.event" argument must be a string/);
  // The engine's own rules: the message names the item by its index.
  typeError([ok, { channel: '', data: 'x' }], /^item 1: channel name must not be empty/);
  typeError([ok, ok, { channel: 'bad-a', data: 'x', id: 'a\nb' }], /^item 2: event id must not contain CR or LF/);
  assert.throws(() => engine.broadcastMany([ok, { channel: 'bad-a', data: 'x', retry: -1 }]), (err) => {
    assert.ok(err instanceof RangeError, `${err.name}: ${err.message}`);
    assert.match(err.message, /items\[1\]\.retry must be a non-negative integer/);
    return true;
  });
  assert.strictEqual(engine.stats().eventsPublished, published);
  await sleep(50);
  assert.strictEqual(c.events.length, 0);
  engine.broadcast('bad-a', 'after');
  await c.waitForEvents(1);
  assert.deepStrictEqual(c.events.map((e) => e.data), ['after']);
  c.close();
});

test('an empty batch returns 0', () => {
  const published = engine.stats().eventsPublished;
  assert.strictEqual(engine.broadcastMany([]), 0);
  assert.strictEqual(engine.stats().eventsPublished, published);
});

test('a client resuming from before a batch gets its events replayed in order', async () => {
  const live = await open(['rp-a', 'rp-b']);
  engine.broadcast('rp-a', 'zero');
  await live.waitForEvents(1);
  const from = live.events[0].id;
  assert.strictEqual(engine.broadcastMany([
    { channel: 'rp-a', data: 'one' },
    { channel: 'rp-b', data: 'two' },
    { channel: 'rp-other', data: 'not mine' },
    { channel: 'rp-a', data: 'three' },
  ]), 3);
  await live.waitForEvents(4);
  const resumed = await open(['rp-a', 'rp-b'], { 'Last-Event-ID': from });
  await resumed.waitForEvents(3);
  assert.deepStrictEqual(resumed.events, live.events.slice(1));
  assert.deepStrictEqual(resumed.events.map((e) => e.data), ['one', 'two', 'three']);
  live.close();
  resumed.close();
});

test('many one-member channels in one call', async () => {
  const clients = [];
  for (let i = 0; i < 20; i++) clients.push(await open([`user-${i}`]));
  const items = [];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < clients.length; i++) items.push({ channel: `user-${i}`, data: `${i}.${round}` });
  }
  assert.strictEqual(engine.broadcastMany(items), 60);
  for (let i = 0; i < clients.length; i++) {
    await clients[i].waitForEvents(3);
    assert.deepStrictEqual(clients[i].events.map((e) => e.data), [`${i}.0`, `${i}.1`, `${i}.2`]);
    clients[i].close();
  }
});

test('after close() the call throws SSE_SHUT_DOWN', async () => {
  const other = new Engine({ heartbeatMs: 0 });
  assert.strictEqual(other.broadcastMany([{ channel: 'x', data: 'y' }]), 0);
  await other.close();
  assert.throws(() => other.broadcastMany([{ channel: 'x', data: 'y' }]), (err) => err.code === 'SSE_SHUT_DOWN');
});
