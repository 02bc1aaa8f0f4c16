'use strict';
// sse-engine behind Express. Open the printed URL in a few browser tabs:
// every tab gets the clock; tabs in the same room get each other's messages.
//
//   (cd ../../bindings-node && npm install && npm run build)
//   npm install && npm start            # PORT=3000 by default

const path = require('node:path');
const express = require('express');
const { Engine } = require('sse-engine');
const { sse } = require('sse-engine/express');

const engine = new Engine({ heartbeatMs: 15000, retryMs: 2000 });
engine.on('connect', (id, mode) => console.log(`client ${id} connected (${mode} mode)`));
engine.on('disconnect', (id, reason) => console.log(`client ${id} left: ${reason}`));
engine.on('gap', (id) => console.log(`client ${id} missed events it cannot get back`));

const app = express();
app.get('/', (req, res) => res.sendFile(path.join(__dirname, 'index.html')));

// The hand-over: after this handler the engine owns the connection. Headers set by
// earlier middleware (here X-Example) go out with the stream.
app.get(
  '/events',
  (req, res, next) => {
    res.set('X-Example', 'express');
    next();
  },
  sse(engine, {
    channels: (req) => ['clock', `room:${req.query.room || 'lobby'}`],
    user: (req) => req.query.user || undefined,
    metadata: (req) => ({ room: req.query.room || 'lobby' }),
  }),
);

app.post('/say', express.json(), (req, res) => {
  const { room = 'lobby', user = 'someone', text = '' } = req.body || {};
  const delivered = engine.broadcast(`room:${room}`, { user, text: String(text).slice(0, 500) }, { event: 'chat' });
  res.json({ delivered });
});

app.get('/stats', (req, res) => res.json({ stats: engine.stats(), channels: engine.channels() }));

setInterval(() => engine.broadcast('clock', { now: new Date().toISOString() }, { event: 'tick' }), 1000);

const port = Number(process.env.PORT || 3000);
const server = app.listen(port, () => console.log(`open http://localhost:${server.address().port}/`));

process.on('SIGINT', async () => {
  console.log('closing');
  await engine.close({ timeoutMs: 1000, lastEvent: { event: 'shutdown', data: 'server going down' } });
  server.close();
  process.exit(0);
});
