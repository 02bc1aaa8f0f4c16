// Type-checked by test/types.test.js (tsc --noEmit): every export in use.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import express from 'express';
import Fastify from 'fastify';
import {
  Engine,
  VERSION,
  DISCONNECT_REASONS,
  type ChannelInfo,
  type ClientInfo,
  type ConnectMode,
  type DisconnectReason,
  type EngineConfig,
  type EngineOptions,
  type HistoryOptions,
  type PublishItem,
  type SseError,
  type Stats,
} from 'sse-engine';
import { sse, resolveOptions } from 'sse-engine/express';
import { ssePlugin } from 'sse-engine/fastify';

const engine = new Engine({ heartbeatMs: 0, history: { maxEvents: 10 }, gapEvent: null, writeTimeoutMs: false });
const version: string = VERSION;
const reasons: readonly DisconnectReason[] = DISCONNECT_REASONS;

engine.on('connect', (id: number, mode: ConnectMode) => void [id, mode]);
engine.on('disconnect', (id: number, reason: DisconnectReason) => void [id, reason]);
engine.on('gap', (id: number) => void id);

http.createServer((req, res) => {
  const id: number = engine.connect(req, res, { channels: ['a'], user: 'u', metadata: { role: 'admin' } });
  const mode: ConnectMode | null = engine.modeOf(id);
  void mode;
});
http2.createSecureServer({}, (req, res) => {
  engine.connect(req, res, { channels: 'a', mode: 'stream', headers: [['X-A', '1']] });
});

const perUser: PublishItem[] = [1, 2].map((n) => ({ channel: `user:${n}`, data: { n } }));
const sent: boolean = engine.send(1, { any: 'json' }, { event: 'e', id: '1', retry: 10 });
const counts: number[] = [
  engine.sendToUser('u', 'x'),
  engine.broadcast('a', Buffer.from('x')),
  engine.broadcastAll('x'),
  engine.broadcastMany(perUser),
  engine.broadcastMany([{ channel: 'a', data: 'x' }, { channel: 'b', data: { n: 1 }, event: 'e', id: '7', retry: 10 }]),
  engine.broadcastWhere('a', { role: { $in: ['admin'] } }, 'x'),
  engine.clientCount(),
  engine.channelCount('a'),
  engine.userCount('u'),
  engine.closeChannel('a', { disconnect: true }),
  engine.removeEmptyChannels(),
];
const flags: boolean[] = [
  engine.subscribe(1, 'b'),
  engine.unsubscribe(1, 'b'),
  engine.disconnect(1),
  engine.setMetadata(1, null),
];
const client: ClientInfo | null = engine.getClient(1);
const lists: ClientInfo[][] = [engine.clients(), engine.clientsIn('a'), engine.clientsOf('u')];
const channels: ChannelInfo[] = engine.channels();
engine.configureChannel('a', { maxEvents: 5, maxAgeMs: 1000 });
const config: EngineConfig = engine.config();
const history: HistoryOptions = config.history;
const options: EngineOptions = config; // a config is accepted back as options
const copy = new Engine(options);
const stats: Stats = engine.stats();
const open: number = stats.connectionsOpen + stats.disconnects.slow;
const queued: number | undefined = client?.queuedBytes;
const since: number | undefined = client?.connectedAtMs;
const seen: string | null | undefined = client?.lastEventId;
const addr: string | null | undefined = client?.remoteAddr;
const text: string = engine.metrics();
engine.ref().unref();
const done: Promise<void> = engine.close({ timeoutMs: 100, lastEvent: { data: 'bye', event: 'bye' } });
const closed: boolean = engine.closed;
done.catch((err: SseError) => err.code === 'SSE_SHUT_DOWN');

const app = express();
app.get('/events', sse(engine, { channels: (req) => [String(req.url)], user: async () => 'u', onConnect: (id) => void id }));
void resolveOptions({ channels: ['a'] }, {} as http.IncomingMessage, {} as http.ServerResponse);

const fastify = Fastify();
fastify.register(ssePlugin, { engine });
fastify.get('/events', (_request, reply) => {
  const id: number | null = reply.sse({ channels: ['a'] });
  void id;
});

void [version, reasons, sent, counts, flags, client, lists, channels, history, copy, open, text, closed];
