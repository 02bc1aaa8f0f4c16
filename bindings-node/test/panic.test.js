'use strict';
// Panics are contained: a panic in native code throws an Error with code SSE_PANIC
// and the Node process goes on. Needs the test-only addon built with the cargo feature
// `fault-injection` (`npm run build:fault`, done by run-tests.sh), whose `faultArm`
// export arms one panic: at the start of the next native call ('call'), in the next
// delivery of lifecycle events ('events'), or in the next shutdown thread ('close').
// The published addon has no such export (checked below).

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const { waitFor } = require('./helpers.js');

const FAULT_ADDON = path.join(__dirname, '..', '..', 'target', 'fault-injection', 'sse-engine.node');
if (!fs.existsSync(FAULT_ADDON)) {
  throw new Error(`${FAULT_ADDON} is missing: build it with \`npm run build:fault\` (run-tests.sh does)`);
}
const addon = require(FAULT_ADDON);

// The package's JavaScript layer on top of the fault-injection addon: this file runs in
// its own process (node --test), so ../native.js is replaced here only.
const nativePath = require.resolve('../native.js');
const stub = new Module(nativePath, module);
stub.filename = nativePath;
stub.loaded = true;
stub.exports = addon;
require.cache[nativePath] = stub;
const { Engine } = require('../index.js');

/** The kind of the event triple that ends a shutdown (src/events.rs). */
const CLOSED = 4;

function assertPanic(err) {
  assert.ok(err instanceof Error, `an Error, got ${err}`);
  assert.strictEqual(err.code, 'SSE_PANIC');
  assert.match(err.message, /sse-engine panicked: injected panic/);
  return true;
}

/** Calls `fn` with a panic armed: it must throw SSE_PANIC. */
function panics(fn) {
  addon.faultArm('call');
  assert.throws(fn, assertPanic);
}

test('the published addon has no fault export', () => {
  const dir = path.join(__dirname, '..');
  const built = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
  assert.ok(built.length > 0, 'the package addon is built');
  for (const file of built) assert.ok(!fs.readFileSync(path.join(dir, file)).includes('faultArm'), file);
  assert.doesNotMatch(fs.readFileSync(path.join(dir, 'native.d.ts'), 'utf8'), /\bfault/i);
  assert.strictEqual(typeof addon.faultArm, 'function');
});

test('every native export throws SSE_PANIC on a panic, and the process goes on', async () => {
  const events = [];
  const native = new addon.NativeEngine({ heartbeatMs: 0 }, (batch) => events.push(...batch));
  const id = native.connectStream({ channels: ['p'], user: 'u' });
  // One call with valid arguments for each export, so that it reaches its body.
  const functions = {
    disconnectReasons: () => addon.disconnectReasons(),
    engineHeaders: () => addon.engineHeaders(),
    streamHead: () => addon.streamHead([], false),
    extraHeaders: () => addon.extraHeaders([], false),
    busyAnswer: () => addon.busyAnswer(1, false),
    lastEventId: () => addon.lastEventId('1', null),
    schema: () => addon.schema(),
    NativeEngine: () => new addon.NativeEngine({}, () => {}),
  };
  const methods = {
    busyRetryAfterSecs: () => native.busyRetryAfterSecs,
    connectFd: () => native.connectFd(0, {}),
    connectStream: () => native.connectStream({}),
    takeStream: () => native.takeStream(id, 1024),
    closeStream: () => native.closeStream(id + 1000),
    send: () => native.send(id, 'x'),
    sendToUser: () => native.sendToUser('u', 'x'),
    broadcast: () => native.broadcast('p', 'x'),
    broadcastMany: () => native.broadcastMany(['p', 'q'], ['x', 'y']),
    broadcastAll: () => native.broadcastAll('x'),
    broadcastWhere: () => native.broadcastWhere('p', '{}', 'x'),
    subscribe: () => native.subscribe(id, 'q'),
    unsubscribe: () => native.unsubscribe(id, 'q'),
    disconnect: () => native.disconnect(id + 1000),
    isConnected: () => native.isConnected(id),
    getClient: () => native.getClient(id),
    clients: () => native.clients(),
    clientsIn: () => native.clientsIn('p'),
    clientsOf: () => native.clientsOf('u'),
    channels: () => native.channels(),
    clientCount: () => native.clientCount(),
    channelCount: () => native.channelCount('p'),
    userCount: () => native.userCount('u'),
    setMetadata: () => native.setMetadata(id, '{"a":1}'),
    closeChannel: () => native.closeChannel('nobody', false),
    removeEmptyChannels: () => native.removeEmptyChannels(),
    configureChannel: () => native.configureChannel('p', 10, 1000),
    config: () => native.config(),
    stats: () => native.stats(),
    metrics: () => native.metrics(),
    setRef: () => native.setRef(false),
    close: () => native.close(100),
    finishClose: () => native.finishClose(),
  };
  // The tables cover every export: a new one must be added here (and guarded).
  const exported = Object.keys(addon).filter((k) => typeof addon[k] === 'function' && !k.startsWith('fault'));
  assert.deepStrictEqual(exported.sort(), Object.keys(functions).sort());
  const ownMethods = Object.getOwnPropertyNames(addon.NativeEngine.prototype).filter((k) => k !== 'constructor');
  assert.deepStrictEqual(ownMethods.sort(), Object.keys(methods).sort());

  for (const [name, call] of [...Object.entries(functions), ...Object.entries(methods)]) {
    addon.faultArm('call');
    assert.throws(call, assertPanic, name);
  }
  // Nothing was left armed, and the engine still works: every call above panicked
  // before doing anything (close() did not start).
  assert.strictEqual(native.send(id, 'after'), true);
  assert.strictEqual(native.getClient(id).id, id);
  assert.strictEqual(native.clientCount(), 1);
  assert.strictEqual(addon.lastEventId(' 7 ', null), '7');
  native.close(100);
  await waitFor(() => events.some((v, i) => i % 3 === 0 && v === CLOSED), { what: 'the CLOSED event' });
  native.finishClose();
});

test('the package API passes SSE_PANIC on (Engine on the fault-injection addon)', async () => {
  const engine = new Engine({ heartbeatMs: 0 });
  panics(() => engine.broadcast('news', { a: 1 }));
  panics(() => engine.broadcastMany([{ channel: 'news', data: { a: 1 } }]));
  panics(() => engine.stats());
  panics(() => engine.clients());
  // After a panic the engine is as it was.
  assert.strictEqual(engine.broadcast('news', 'ok'), 0);
  assert.strictEqual(engine.stats().connectionsOpen, 0);
  // A close() whose call panics rejects, and the engine stays open.
  addon.faultArm('call');
  await assert.rejects(engine.close({ timeoutMs: 100 }), assertPanic);
  assert.strictEqual(engine.closed, false);
  await engine.close({ timeoutMs: 100 });
});

test('a panic in the shutdown thread: close() rejects with SSE_PANIC, the process goes on', async () => {
  const engine = new Engine({ heartbeatMs: 0 });
  addon.faultArm('close');
  await assert.rejects(engine.close({ timeoutMs: 100 }), assertPanic);
  assert.strictEqual(engine.closed, true);
  assert.throws(() => engine.broadcast('news', 'x'), { code: 'SSE_SHUT_DOWN' });
});

test('a panic while delivering lifecycle events loses that batch only', async () => {
  const engine = new Engine({ heartbeatMs: 0 });
  const connected = [];
  engine.on('connect', (id) => connected.push(id));
  const native = engine._native;
  addon.faultArm('events');
  const lost = native.connectStream({ channels: ['e'] });
  await waitFor(() => !addon.faultPending('events'), { what: 'the panic in the event delivery' });
  // The next batch arrives as usual (the lost one was reported on stderr).
  const kept = native.connectStream({ channels: ['e'] });
  await waitFor(() => connected.includes(kept), { what: 'the connect event after the lost batch' });
  assert.ok(!connected.includes(lost), 'the lost batch was not delivered');
  native.disconnect(lost);
  native.disconnect(kept);
  await engine.close({ timeoutMs: 100 });
});

test('a panicking reactor fails the engine closed: its client leaves with error, calls throw SSE_SHUT_DOWN', async () => {
  const engine = new Engine({ heartbeatMs: 0 });
  const gone = [];
  engine.on('disconnect', (id, reason) => gone.push([id, reason]));
  const id = engine._native.connectStream({ channels: ['r'] });
  addon.faultArm('reactor');
  assert.strictEqual(engine.send(id, 'boom'), true); // queued; the reactor panics applying it
  await waitFor(() => gone.some(([c, r]) => c === id && r === 'error'), { what: 'the client reported as error' });
  assert.throws(() => engine.broadcast('r', 'x'), (err) => err.code === 'SSE_SHUT_DOWN' && /panicked/.test(err.message));
  assert.strictEqual(engine.stats().reactorFailures, 1);
  await assert.rejects(engine.close({ timeoutMs: 100 }), (err) => err.code === 'SSE_SHUT_DOWN' && /panicked/.test(err.message));
});
