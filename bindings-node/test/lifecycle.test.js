'use strict';
// The engine's life without and around close(), each in a child process of its own:
// an engine dropped without close() is garbage-collected and shut down, and listeners
// may call the engine (or throw) while close() runs.

const { test } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { execFile } = require('node:child_process');

/** Runs a fixture in a child process; resolves with its exit and its JSON lines. */
function runFixture(name, { args = [], execArgv = [] } = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [...execArgv, path.join(__dirname, 'fixtures', name), ...args],
      { encoding: 'utf8', timeout: 30000 }, (err, stdout, stderr) => {
        const records = stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
        resolve({ code: err ? err.code : 0, signal: err ? err.signal : null, stdout, stderr, records });
      });
  });
}

test('an engine dropped without close() is collected: clients see EOF, the reactor thread ends', async () => {
  const run = await runFixture('dropped-engine.js', { execArgv: ['--expose-gc'] });
  assert.strictEqual(run.code, 0, run.stderr);
  const [seen] = run.records;
  assert.ok(seen, `no report from the child: ${run.stdout}${run.stderr}`);
  assert.strictEqual(seen.during, seen.before + 1, 'the engine runs one sse-reactor-* thread');
  assert.strictEqual(seen.engineCollected, true, 'the unreachable Engine was garbage-collected');
  assert.deepStrictEqual(seen.ended, [true, true], `both client sockets see EOF (after ${seen.gcRuns} gc runs)`);
  assert.deepStrictEqual(seen.errors, [null, null], 'a FIN, not a reset');
  assert.strictEqual(seen.after, seen.before, 'the sse-reactor-* thread is gone');
  assert.deepStrictEqual(seen.events, [['last words'], ['last words']], 'what was queued before the drop was flushed');
});

/** What every call returns from a `disconnect` listener while close() runs. */
const WHILE_CLOSING = {
  send: { value: false },
  sendToUser: { value: 0 },
  broadcast: { value: 0 },
  broadcastAll: { value: 0 },
  broadcastWhere: { value: 0 },
  subscribe: { value: false },
  unsubscribe: { value: false },
  disconnect: { value: false },
  setMetadata: { value: false },
  getClient: { value: null },
  modeOf: { value: null },
  clients: { value: [] },
  clientsIn: { value: [] },
  clientsOf: { value: [] },
  channels: { value: [] },
  clientCount: { value: 0 },
  channelCount: { value: 0 },
  userCount: { value: 0 },
  closeChannel: { value: 0 },
  removeEmptyChannels: { value: 0 },
  configureChannel: { value: 'undefined' },
  stats: { value: 'object' },
  metrics: { value: 'string' },
  ref: { value: true },
  unref: { value: true },
  connect: { threw: 'SSE_SHUT_DOWN' },
  close: { value: 'same promise' },
};

/** After close() resolved, calls throw as before. */
const AFTER_CLOSE = {
  broadcast: { threw: 'SSE_SHUT_DOWN' },
  clients: { threw: 'SSE_SHUT_DOWN' },
  send: { threw: 'SSE_SHUT_DOWN' },
};

test('disconnect listeners may call every engine method during close(); close() resolves', async () => {
  const run = await runFixture('close-listeners.js', { args: ['calls'] });
  assert.strictEqual(run.code, 0, `the process survives: ${run.stderr}`);
  const steps = run.records.map((r) => r.step);
  assert.deepStrictEqual(steps, ['listener', 'listener', 'listener', 'closed', 'clients', 'close again'], run.stdout);
  for (const listener of run.records.filter((r) => r.step === 'listener')) {
    assert.strictEqual(listener.reason, 'shutdown');
    assert.deepStrictEqual(listener.results, WHILE_CLOSING);
  }
  const clients = run.records.find((r) => r.step === 'clients');
  assert.deepStrictEqual(clients.events, [['bye'], ['bye'], ['bye']], 'only the last event, nothing the listeners sent');
  assert.deepStrictEqual(clients.after, AFTER_CLOSE);
  assert.strictEqual(run.records.find((r) => r.step === 'close again').again, 'SSE_SHUT_DOWN');
});

test('a listener that throws during close() does not stop it: close() resolves, then the errors are rethrown', async () => {
  const run = await runFixture('close-listeners.js', { args: ['throws'] });
  assert.strictEqual(run.code, 0, run.stderr);
  assert.deepStrictEqual(run.records.slice(0, 4), [
    { step: 'closed', calls: 3 },
    { step: 'uncaught', message: 'listener boom 1' },
    { step: 'uncaught', message: 'listener boom 2' },
    { step: 'uncaught', message: 'listener boom 3' },
  ], 'every disconnect reached the listener; its errors came after close() resolved');
  const clients = run.records.find((r) => r.step === 'clients');
  assert.deepStrictEqual(clients.events, [['bye'], ['bye'], ['bye']]);
});
