'use strict';
// Benchmark host: sse-engine driven from Express. GET /sse hands the request over
// (channel `bench`, heartbeats off, the engine writes the response head; a
// Last-Event-ID header or lastEventId query parameter is honoured); GET /burst calls
// engine.broadcast() M times in a loop; GET /channels publishes to many channels (the
// `sse-loadgen channels` scenario). Needs the addon built
// (`npm install && npm run build` in bindings-node/).

const express = require('../../bindings-node/node_modules/express');
const { Engine } = require('../../bindings-node');
const { sse } = require('../../bindings-node/lib/express');
const { burstParams, channelsParams, eventData, nowNs, parseArgs, respond, start } = require('./common');

// --threads T (from the load generator) sets the engine's reactor threads.
const engine = new Engine({ heartbeatMs: 0, threads: parseArgs(process.argv.slice(2)).threads });
const app = express();
app.disable('x-powered-by');
// GET /sse?channel=NAME also joins NAME (the many-channels scenario: a channel per client).
const channelsOf = (req) => (typeof req.query.channel === 'string' ? ['bench', req.query.channel] : ['bench']);
app.get('/sse', sse(engine, { channels: channelsOf }));
app.get('/burst', (req, res) => {
  const params = burstParams(req.url);
  if (params.error) return respond(res, 400, `${params.error}\n`);
  for (let i = 0; i < params.count; i++) engine.broadcast('bench', eventData(nowNs(), params.size));
  return respond(res, 200);
});
// GET /channels?mode=one|each|batch&clients=N&rounds=R&size=S: R rounds, each one
// broadcast to `bench` (one), one broadcast to each of user-0 … user-<N-1> (each), or one
// broadcastMany of those N items (batch); answers the events published and the seconds
// spent publishing.
app.get('/channels', (req, res) => {
  const params = channelsParams(req.url);
  if (params.error) return respond(res, 400, `${params.error}\n`);
  const { mode, clients, rounds, size } = params;
  const names = Array.from({ length: clients }, (_, i) => `user-${i}`);
  const started = process.hrtime.bigint();
  let published = 0;
  for (let r = 0; r < rounds; r++) {
    if (mode === 'one') {
      engine.broadcast('bench', eventData(nowNs(), size));
      published += 1;
    } else if (mode === 'each') {
      for (const name of names) engine.broadcast(name, eventData(nowNs(), size));
      published += names.length;
    } else {
      const items = names.map((channel) => ({ channel, data: eventData(nowNs(), size) }));
      engine.broadcastMany(items);
      published += items.length;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return respond(res, 200, `published ${published}\nseconds ${seconds.toFixed(6)}\n`);
});
app.get('/stats', (req, res) => {
  const s = engine.stats();
  const disconnects = Object.values(s.disconnects).reduce((a, b) => a + b, 0);
  const lines = [
    'kind node-engine',
    `connections_open ${s.connectionsOpen}`,
    `connections_total ${s.connectionsTotal}`,
    `refused_total ${s.refusedTotal}`,
    `events_published ${s.eventsPublished}`,
    `frames_queued ${s.framesQueued}`,
    `bytes_written ${s.bytesWritten}`,
    `write_calls ${s.writeCalls}`,
    `queue_high_water ${s.queueHighWater}`,
    `disconnects_total ${disconnects}`,
    `events_replayed ${s.eventsReplayed}`,
    `gaps ${s.gaps}`,
  ];
  respond(res, 200, `${lines.join('\n')}\n`);
});
app.use((req, res) => respond(res, 404));
start('express-engine', app);
