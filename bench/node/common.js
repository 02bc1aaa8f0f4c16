'use strict';
// Shared by the Node benchmark hosts: the same HTTP surface as the Rust bench host
// (bench/src/host.rs), so `sse-loadgen --host-cmd` can drive them.
//
//   node <host>.js [--port P] [--watch-stdin] [--kind K] [--threads T]
//
// - prints `READY port=<port> pid=<pid>` as its first stdout line;
// - GET /sse becomes an event stream (each host its own way);
// - GET /burst?count=M&size=S publishes M events whose data is the send time in
//   nanoseconds since the UNIX epoch, a space and `x` padding up to S bytes, then
//   answers 200 with an empty body;
// - GET /channels?mode=one|each|batch&clients=N&rounds=R&size=S (sse-engine hosts only)
//   publishes R rounds to channel `bench` or to each client's own channel;
// - GET /stats answers `name value` lines;
// - with --watch-stdin it exits when its stdin closes (the load generator died).

const http = require('node:http');

const MAX_BURST_EVENTS = 1_000_000;
const MAX_EVENT_SIZE = 1024 * 1024;

function parseArgs(argv) {
  const args = { port: 0, watchStdin: false, threads: 1 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') args.port = Number(argv[++i]);
    else if (arg === '--threads') args.threads = Number(argv[++i]);
    else if (arg === '--kind') i += 1; // the load generator names the host; nothing to choose
    else if (arg === '--watch-stdin') args.watchStdin = true;
    else throw new Error(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new Error('bad --port');
  return args;
}

/**
 * CLOCK_REALTIME − CLOCK_MONOTONIC (`process.hrtime.bigint()`) in nanoseconds, measured
 * at a few edges of `Date.now()` (CLOCK_REALTIME truncated to milliseconds): when
 * Date.now() steps to `ms`, the real-time clock crossed `ms` ms after the previous
 * Date.now() call read it and before the current one returned, an hrtime window of a
 * few hundred nanoseconds; the offset is taken at the window's middle, so its error is at
 * most half the narrowest window seen (`errorNs`). Spins for about `edges` milliseconds.
 *
 * (`performance.timeOrigin + performance.now()` is off by the time Node took between
 * reading its monotonic and its wall-clock origin at startup: usually a few to a few tens
 * of µs, but milliseconds when the process is descheduled in between.)
 */
function calibrateRealtime(edges = 5) {
  let best = null;
  for (let i = 0; i < edges || (best.errorNs > 10_000n && i < 100); i++) {
    let before = process.hrtime.bigint();
    let prev = Date.now();
    for (;;) {
      const h0 = process.hrtime.bigint();
      const ms = Date.now();
      const h1 = process.hrtime.bigint();
      if (ms > prev) {
        const errorNs = (h1 - before + 1n) / 2n;
        if (best === null || errorNs < best.errorNs) {
          best = { offsetNs: BigInt(ms) * 1_000_000n - (before + h1) / 2n, errorNs };
        }
        break;
      }
      prev = ms;
      before = h0;
    }
  }
  return best;
}

const REALTIME = calibrateRealtime();

/** Nanoseconds since the UNIX epoch (CLOCK_REALTIME, read through the monotonic clock), as text. */
function nowNs() {
  return (process.hrtime.bigint() + REALTIME.offsetNs).toString();
}

/** The data of one benchmark event: the send time, a space, `x` padding up to `size` bytes. */
function eventData(sendNs, size) {
  const head = `${sendNs} `;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

/** `count` and `size` of /burst?count=M&size=S, or an error message. */
function burstParams(url) {
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const out = { count: 20, size: 64 };
  for (const [name, value] of query) {
    if (name !== 'count' && name !== 'size') return { error: `unknown burst parameter ${JSON.stringify(name)}` };
    if (!/^\d+$/.test(value)) return { error: `bad ${name}=${JSON.stringify(value)}` };
    out[name] = Number(value);
  }
  if (out.count > MAX_BURST_EVENTS || out.size > MAX_EVENT_SIZE) {
    return { error: `burst too large (count <= ${MAX_BURST_EVENTS}, size <= ${MAX_EVENT_SIZE})` };
  }
  return out;
}

const CHANNELS_MODES = new Set(['one', 'each', 'batch']);

/** `mode`, `clients`, `rounds` and `size` of /channels?…, or an error message. */
function channelsParams(url) {
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const out = { mode: 'one', clients: 0, rounds: 1, size: 64 };
  for (const [name, value] of query) {
    if (name === 'mode') {
      if (!CHANNELS_MODES.has(value)) return { error: `unknown mode ${JSON.stringify(value)}` };
      out.mode = value;
      continue;
    }
    if (!(name in out)) return { error: `unknown channels parameter ${JSON.stringify(name)}` };
    if (!/^\d+$/.test(value)) return { error: `bad ${name}=${JSON.stringify(value)}` };
    out[name] = Number(value);
  }
  if (out.clients * out.rounds > 10 * MAX_BURST_EVENTS || out.size > MAX_EVENT_SIZE) {
    return { error: `run too large (clients × rounds <= ${10 * MAX_BURST_EVENTS}, size <= ${MAX_EVENT_SIZE})` };
  }
  return out;
}

function respond(res, status, body = '') {
  res.writeHead(status, { 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  res.end(body);
}

function pathOf(req) {
  const q = req.url.indexOf('?');
  return q === -1 ? req.url : req.url.slice(0, q);
}

/**
 * Serves `server` (a `node:http` server, whatever handles its requests) as the host
 * `name`: listens on 127.0.0.1 (--port, backlog 4096), prints READY once listening, and
 * with --watch-stdin exits when stdin closes.
 */
function serve(name, server) {
  const args = parseArgs(process.argv.slice(2));
  server.listen({ port: args.port, host: '127.0.0.1', backlog: 4096 }, () => {
    process.stdout.write(`READY port=${server.address().port} pid=${process.pid}\n`);
    process.stderr.write(`${name}: listening on 127.0.0.1:${server.address().port} (node ${process.version}; ` +
      `event timestamps = CLOCK_MONOTONIC + offset calibrated to ±${REALTIME.errorNs} ns)\n`);
  });
  if (args.watchStdin) {
    process.stdin.on('data', () => {});
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
  }
  return server;
}

/**
 * Starts the host: `handler(req, res)` serves every request (an Express app or a
 * plain function). Prints READY once listening.
 */
function start(name, handler) {
  return serve(name, http.createServer(handler));
}

module.exports = { burstParams, channelsParams, eventData, nowNs, parseArgs, pathOf, respond, serve, start };
