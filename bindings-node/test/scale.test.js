'use strict';
// 5,000 connections handed over from Express: the Node process's RSS grows by at
// most 1.5 KiB per connection and no Node object of any connection stays reachable.
// Then 10,000 connections: `broadcast` returns before the fan-out is delivered and the
// event loop runs on meanwhile. The server runs in a child process (its memory alone
// is measured); the clients are raw TCP sockets here. Needs `ulimit -n` above 10,100.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const fs = require('node:fs');

const FIRST = 5000;
const TOTAL = 10000;
const BATCH = 250;
const REQUEST = 'GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n';
const PLAIN = 'GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

/** The soft RLIMIT_NOFILE of this process (inherited by the server). */
function openFileLimit() {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line.split(/\s+/)[3];
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return Infinity;
  }
}
const skip = openFileLimit() < TOTAL + 200 ? `needs ulimit -n of at least ${TOTAL + 200} (run-tests.sh raises it)` : false;

let child;
let port;
const clients = [];

function ask(message) {
  return new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    child.send(message);
  });
}

/** Opens one client; resolves once its SSE response head arrived. */
function openClient() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const client = { socket, head: false, lastData: 0n, received: '' };
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      client.lastData = process.hrtime.bigint();
      if (!client.head) {
        client.received += chunk;
        if (!client.received.includes('\r\n\r\n')) return;
        if (!client.received.startsWith('HTTP/1.1 200')) {
          reject(new Error(`unexpected answer: ${client.received.slice(0, 80)}`));
          return;
        }
        client.head = true;
        client.received = client.received.slice(client.received.indexOf('\r\n\r\n') + 4);
        resolve(client);
        return;
      }
      client.received += chunk;
    });
    socket.on('error', reject);
    socket.write(REQUEST);
  });
}

/** One ordinary request on its own connection (warm-up traffic). */
function plainRequest() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      resolve();
    });
    socket.resume();
    socket.write(PLAIN);
  });
}

async function openClients(n) {
  for (let done = 0; done < n; done += BATCH) {
    const batch = [];
    for (let i = 0; i < Math.min(BATCH, n - done); i++) batch.push(openClient());
    clients.push(...(await Promise.all(batch)));
  }
}

before(async () => {
  if (skip) return;
  child = fork(path.join(__dirname, 'fixtures', 'scale-server.js'), [], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = await once(child, 'message');
  port = ready.port;
});

after(async () => {
  if (skip) return;
  for (const client of clients) client.socket.destroy();
  if (child.connected) {
    child.send({ cmd: 'exit' });
    await once(child, 'exit');
  }
});

test(`${FIRST} hand-overs: RSS grows at most 1.5 KiB per connection, no Node object kept`, { skip }, async (t) => {
  // Warm the server up with as much ordinary HTTP traffic first: V8 sizes its young
  // generation (and the allocator its arenas) to the allocation rate once, whatever
  // the requests become. What grows after that is what the connections keep.
  for (let done = 0; done < FIRST; done += BATCH) {
    await Promise.all(Array.from({ length: BATCH }, plainRequest));
  }
  const baseline = await ask({ cmd: 'measure' });
  await openClients(FIRST);
  let loaded = await ask({ cmd: 'measure' });
  // Finalizers run some time after a collection: give them a few more rounds.
  for (let i = 0; i < 5 && ['socket', 'req', 'res'].some((k) => loaded.finalized[k] < FIRST); i++) {
    loaded = await ask({ cmd: 'measure' });
  }
  const perConnection = (loaded.rss - baseline.rss) / FIRST;
  const heapPerConnection = (loaded.heapUsed - baseline.heapUsed) / FIRST;
  t.diagnostic(`RSS ${(baseline.rss / 1048576).toFixed(1)} -> ${(loaded.rss / 1048576).toFixed(1)} MiB: ` +
    `${perConnection.toFixed(0)} B per connection; heap ${heapPerConnection.toFixed(1)} B per connection; ` +
    `finalized ${JSON.stringify(loaded.finalized)}`);
  assert.strictEqual(loaded.clients, FIRST);
  assert.strictEqual(loaded.handedOver, FIRST);
  assert.strictEqual(loaded.nodeConnections, 0, 'the HTTP server holds no connection');
  assert.ok(perConnection <= 1536, `RSS per connection ${perConnection.toFixed(0)} B > 1.5 KiB`);
  // Every socket, request and response was garbage-collected...
  for (const kind of ['socket', 'req', 'res']) {
    assert.strictEqual(loaded.finalized[kind], FIRST, `${kind}: ${loaded.finalized[kind]} of ${FIRST} collected`);
  }
  // ...and the heap did not grow with the connections.
  assert.ok(heapPerConnection < 128, `heap grew ${heapPerConnection.toFixed(1)} B per connection`);
});

test(`broadcast to ${TOTAL} clients does not wait for the fan-out`, { skip }, async (t) => {
  await openClients(TOTAL - clients.length);
  for (const client of clients) client.received = '';
  const answer = await ask({ cmd: 'broadcast', data: 'tick' });
  assert.strictEqual(answer.count, TOTAL);
  const everyone = () => clients.every((c) => c.received.includes('data: tick\n\n'));
  const deadline = Date.now() + 30000;
  while (!everyone()) {
    assert.ok(Date.now() < deadline, 'every client got the event');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const lastArrival = clients.reduce((max, c) => (c.lastData > max ? c.lastData : max), 0n);
  const returned = BigInt(answer.returned);
  const loopFree = BigInt(answer.loopFree);
  t.diagnostic(`broadcast returned after ${Number(returned - BigInt(answer.before)) / 1000} µs; ` +
    `the last of ${TOTAL} clients got it ${Number(lastArrival - BigInt(answer.before)) / 1e6} ms after the call`);
  // Structural, not a threshold: the call returned, and the server's event loop ran
  // again, before the fan-out had reached every client.
  assert.ok(returned < lastArrival, 'broadcast returned before the last delivery');
  assert.ok(loopFree < lastArrival, 'the event loop ran while the engine fanned out');
});
