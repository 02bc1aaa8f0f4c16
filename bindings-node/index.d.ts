// Type declarations of the `sse-engine` package (the JavaScript API in index.js).
/// <reference types="node" />

import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** The engine's version. */
export declare const VERSION: string;

/** Why a client left, as `disconnect` events report it. */
export type DisconnectReason = 'closed' | 'error' | 'slow' | 'timeout' | 'server' | 'shutdown';

/** Disconnect reasons in the engine's order. */
export declare const DISCONNECT_REASONS: readonly DisconnectReason[];

/** How a client was handed over: its socket (plain HTTP/1.1) or its bytes (TLS, HTTP/2). */
export type ConnectMode = 'socket' | 'stream';

/**
 * Engine settings, each with its default (`@default`; none: unset by default). Durations
 * are in milliseconds, except `busyRetryAfterSecs` (seconds, as its name says). `null`
 * leaves a setting unset (where it may be: the doc says what unset means).
 */
export interface EngineOptions {
  /**
   * Reactor threads (at most 64); clients are spread over them.
   * @default 1
   */
  threads?: number;
  /**
   * Interval of the comment line sent to a client that got nothing meanwhile. `0`,
   * `null` or `false`: no heartbeats.
   * @default 15000
   */
  heartbeatMs?: number | null | false;
  /** `retry:` hint sent to every client right after connecting. Unset: no hint. */
  retryMs?: number | null;
  /**
   * Bytes a client may have queued (at least 1024); past it the client is dropped as `slow`.
   * @default 1048576
   */
  maxQueueBytes?: number;
  /** Most clients connected at once; beyond it hand-overs are refused with 503. Unset: no limit. */
  maxClients?: number | null;
  /** Most clients in one channel; beyond it hand-overs are refused with 503. Unset: no limit. */
  maxClientsPerChannel?: number | null;
  /**
   * A client with queued bytes that accepts none this long is dropped as `timeout`
   * (also sets TCP_USER_TIMEOUT and keepalive). `0`, `null` or `false`: never.
   * @default 30000
   */
  writeTimeoutMs?: number | null | false;
  /**
   * `Retry-After` seconds of the 503 answer to a refused hand-over.
   * @default 5
   */
  busyRetryAfterSecs?: number;
  /**
   * Give channel and broadcast-to-all events an engine id when they have none.
   * @default true
   */
  autoIds?: boolean;
  /** History kept per channel (and for `broadcastAll`), for replay. */
  history?: HistoryOptions;
  /**
   * Most events replayed to a reconnecting client at once (at least 1); the rest
   * follows as it drains.
   * @default 1000
   */
  maxReplay?: number;
  /**
   * Event sent to a client whose Last-Event-ID is not in history. `null` or `false`: none.
   * @default 'sse-gap'
   */
  gapEvent?: string | null | false;
}

/** `EngineOptions.history`. */
export interface HistoryOptions {
  /**
   * Events kept per channel; 0 turns history off.
   * @default 1000
   */
  maxEvents?: number;
  /**
   * Age past which history events are dropped; 0 turns history off.
   * @default 300000
   */
  maxAgeMs?: number;
}

/**
 * The settings an engine runs with (`engine.config()`): every option, defaults filled
 * in, `null` where a setting is unset. `new Engine(engine.config())` makes an engine
 * with the same settings.
 */
export interface EngineConfig {
  threads: number;
  heartbeatMs: number | null;
  retryMs: number | null;
  maxQueueBytes: number;
  maxClients: number | null;
  maxClientsPerChannel: number | null;
  writeTimeoutMs: number | null;
  busyRetryAfterSecs: number;
  autoIds: boolean;
  history: Required<HistoryOptions>;
  maxReplay: number;
  gapEvent: string | null;
}

/** The request and response of any Node HTTP server: `http`, `https`, `http2` (compat API). */
export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;

/** Response headers: an object, or a list of `[name, value]` pairs. */
export type Headers = Record<string, string | number | readonly string[]> | ReadonlyArray<readonly [string, string]>;

/** How one request is handed over. */
export interface ConnectOptions {
  /** Channels the client joins at once (a single name is accepted too). */
  channels?: string | readonly string[];
  /** The user this connection belongs to (one user may hold many connections). */
  user?: string;
  /** Application metadata: an object (or its JSON text), for `broadcastWhere` filters. */
  metadata?: Record<string, unknown> | string | null;
  /**
   * Extra response headers. The headers already set on `res` are sent too; the
   * engine's own (Content-Type, Cache-Control, Connection, X-Accel-Buffering) win.
   */
  headers?: Headers;
  /**
   * The client's last event id (taken as given). Default, by the engine's rule: the
   * `Last-Event-ID` header wins, else the query's first `lastEventId` value;
   * surrounding ASCII whitespace trimmed; empty means none. `null`: none.
   */
  lastEventId?: string | null;
  /** `retry:` hint for this client, in milliseconds. */
  retry?: number;
  /**
   * 'auto' (default): socket mode when the request's socket can be handed over (plain
   * HTTP/1.1 over TCP), stream mode otherwise (TLS, HTTP/2, no descriptor).
   * 'socket': socket mode or an error. 'stream': always stream mode.
   */
  mode?: 'auto' | ConnectMode;
}

/** Optional fields of an event. */
export interface EventOptions {
  /** The `event:` name (the browser's listener name). Must not contain CR or LF. */
  event?: string;
  /** The `id:`; printable ASCII, at most 256 bytes. */
  id?: string;
  /** The `retry:` hint in milliseconds. */
  retry?: number;
}

/**
 * Event data: a string as it is, a Buffer/Uint8Array as UTF-8 text, anything else
 * `JSON.stringify`-ed.
 */
export type EventData = unknown;

/** One event for one channel, for `broadcastMany`. */
export interface PublishItem extends EventOptions {
  channel: string;
  data: EventData;
}

/** A client as the engine reports it (camelCase; Python and C use snake_case names). */
export interface ClientInfo {
  id: number;
  user: string | null;
  /** In the order the client joined them. */
  channels: string[];
  metadata: Record<string, unknown> | null;
  /** Milliseconds since the UNIX epoch. */
  connectedAtMs: number;
  /** `ip:port`; null in stream mode. */
  remoteAddr: string | null;
  /** Bytes queued and not yet taken by the kernel (or, in stream mode, by the host). */
  queuedBytes: number;
  /** The last event id the client has. */
  lastEventId: string | null;
}

/** A channel as the engine reports it. */
export interface ChannelInfo {
  name: string;
  /** Clients subscribed now. */
  members: number;
  /** Events in its history now. */
  history: number;
}

/**
 * The engine's counters (camelCase; `metrics()` renders them under their Prometheus
 * names, `sse_engine_*`).
 */
export interface Stats {
  /** Clients connected now. */
  connectionsOpen: number;
  /** Clients accepted since start. */
  connectionsTotal: number;
  /** Hand-overs refused by a limit (answered 503). */
  refusedTotal: number;
  /** Disconnects since start, by reason. */
  disconnects: Record<DisconnectReason, number>;
  /** Events published (one per send or broadcast call that reached the engine). */
  eventsPublished: number;
  /** Frames queued to clients (one per recipient per event, heartbeats included). */
  framesQueued: number;
  /** Bytes written to client sockets. */
  bytesWritten: number;
  /** `sendmsg` calls on client sockets (`framesQueued / writeCalls` shows coalescing). */
  writeCalls: number;
  /** Heartbeat comments queued. */
  heartbeats: number;
  /** The most bytes any one client has had queued. */
  queueHighWater: number;
  /** Events sent from history to reconnecting clients. */
  eventsReplayed: number;
  /** Reconnects whose `Last-Event-ID` was not in history. */
  gaps: number;
  /** Reactor threads that stopped on a panic: the engine failed closed (every call throws). 0 when healthy. */
  reactorFailures: number;
}

/** Options of `close()`. */
export interface CloseOptions {
  /** How long queued bytes may take to drain. Default 1000. */
  timeoutMs?: number;
  /** An event sent to every client first. */
  lastEvent?: EventOptions & { data: EventData };
}

/**
 * Error codes: engine errors (`TypeError` for invalid arguments, `RangeError` for
 * numbers out of range, `Error` otherwise) and hand-over refusals. `SSE_PANIC`: a
 * panic in the native code was caught (an `Error`; the process goes on); it is a bug,
 * please report it.
 */
export type ErrorCode =
  | 'SSE_INVALID_ARGUMENT'
  | 'SSE_INVALID_UTF8'
  | 'SSE_OUT_OF_RANGE'
  | 'SSE_BAD_SOCKET'
  | 'SSE_NOT_FOUND'
  | 'SSE_LIMIT_REACHED'
  | 'SSE_SHUT_DOWN'
  | 'SSE_IO'
  | 'SSE_PANIC'
  | 'SSE_HEADERS_SENT'
  | 'SSE_REQUEST_HAS_BODY'
  | 'SSE_CLIENT_GONE';

export interface SseError extends Error {
  code: ErrorCode;
  /**
   * On a refused socket hand-over: `true` when the engine took the socket (a limit: it
   * answered 503 and closed it), `false` when the connection is untouched.
   */
  fdTaken?: boolean;
}

export interface EngineEvents {
  /** A client was registered and its response head queued. */
  connect: [clientId: number, mode: ConnectMode];
  /** A client left. */
  disconnect: [clientId: number, reason: DisconnectReason];
  /** A client's Last-Event-ID was not in history: it must resync. */
  gap: [clientId: number];
}

/**
 * An SSE engine. Its reactor threads own the connections handed over; methods return
 * at once (sends queue the event, waiting only while the reactor is a whole command
 * queue behind, and throwing `SSE_LIMIT_REACHED` after 1 s of that; registry queries
 * wait behind what was queued before them, at most one flush pass). Lifecycle events arrive as `connect`,
 * `disconnect` and `gap`. An open engine does not keep the process alive unless
 * `ref()` is called. An engine the app no longer references is shut down when the
 * garbage collector frees it (1 s flush, every client closed, threads stopped), as
 * Rust's `Drop` does; `close()` does it at a known time.
 */
export declare class Engine extends EventEmitter {
  constructor(options?: EngineOptions);

  /**
   * True once `close()` was called. Until `close()` resolves, calls answer without
   * delivering anything (`false`, `0`, `null`, `[]`; `connect` throws `SSE_SHUT_DOWN`);
   * once it resolved, every call but `stats()`/`metrics()`/`ref()`/`unref()` throws
   * `SSE_SHUT_DOWN`.
   */
  readonly closed: boolean;

  /**
   * Hands the request over and returns the client id. Call it before anything is
   * written to `res`; afterwards do not use `req` or `res`. Throws `SSE_HEADERS_SENT`,
   * `SSE_REQUEST_HAS_BODY`, `SSE_CLIENT_GONE`, engine errors for bad options, and
   * `SSE_LIMIT_REACHED` when a limit refused the client (it was answered 503).
   * Which mode was used: `modeOf(id)`, and the `connect` event.
   */
  connect(req: AnyRequest, res: AnyResponse, options?: ConnectOptions): number;

  /** 'socket' or 'stream' for a connected client, null when there is none. */
  modeOf(clientId: number): ConnectMode | null;

  /** Sends to one client; `false` when no such client is connected. */
  send(clientId: number, data: EventData, options?: EventOptions): boolean;
  /** Sends to every connection of `user`; returns how many. */
  sendToUser(user: string, data: EventData, options?: EventOptions): number;
  /** Sends to every member of `channel` (and keeps the event in its history); returns how many. */
  broadcast(channel: string, data: EventData, options?: EventOptions): number;
  /**
   * Publishes many events, each to its channel, in one call: the same as `broadcast`
   * for each item in order (ids, history, replay, counters), with one engine lock and
   * one wake-up of the reactor — the fast way to send to many small channels (one per
   * user, say). Every item is checked first: when one is invalid nothing is published
   * and the error (`SSE_INVALID_ARGUMENT`) names it (`items[3].channel`, or `item 3:` for
   * the engine's rules). Returns the deliveries queued (the sum over the items; 0 for
   * an empty array).
   */
  broadcastMany(items: readonly PublishItem[]): number;
  /** Sends to every client; returns how many. */
  broadcastAll(data: EventData, options?: EventOptions): number;
  /**
   * Sends to the members of `channel` whose metadata matches `filter`: field
   * equalities, a value may be `{ $in: [...] }`. Returns how many members it was
   * evaluated against.
   */
  broadcastWhere(channel: string, filter: Record<string, unknown> | string, data: EventData, options?: EventOptions): number;

  /** `true` when added; `false` when already a member or no such client. */
  subscribe(clientId: number, channel: string): boolean;
  /** `true` when removed; `false` when not a member or no such client. */
  unsubscribe(clientId: number, channel: string): boolean;
  /** Closes a client's stream (reason 'server'); `false` when no such client. */
  disconnect(clientId: number): boolean;

  /** Whether the client is connected now (answered at once, without a registry query). */
  isConnected(clientId: number): boolean;
  getClient(clientId: number): ClientInfo | null;
  clients(): ClientInfo[];
  clientsIn(channel: string): ClientInfo[];
  clientsOf(user: string): ClientInfo[];
  channels(): ChannelInfo[];
  clientCount(): number;
  channelCount(channel: string): number;
  userCount(user: string): number;
  /** Replaces a client's metadata (`null` clears it); `false` when no such client. */
  setMetadata(clientId: number, metadata: Record<string, unknown> | string | null): boolean;
  /** Unsubscribes every member (with `disconnect`, closes them) and forgets the channel; returns how many members it had. */
  closeChannel(channel: string, options?: { disconnect?: boolean }): number;
  /** Forgets channels without members; returns how many. */
  removeEmptyChannels(): number;
  /** Sets a channel's history limits (0 turns its history off). */
  configureChannel(channel: string, history: { maxEvents: number; maxAgeMs: number }): void;

  /** The settings the engine runs with (also after close()). */
  config(): EngineConfig;
  /** The counters (also after close()). */
  stats(): Stats;
  /** The counters in Prometheus text format (also after close()). */
  metrics(): string;

  /** Keeps the process alive while the engine is open. */
  ref(): this;
  /** Lets the process exit while the engine is open (the default). */
  unref(): this;

  /**
   * Stops taking clients, sends `lastEvent` if given, flushes for up to `timeoutMs`,
   * closes every client (reason 'shutdown'). Resolves after every lifecycle event of
   * the shutdown was emitted, also when a listener throws (such errors are rethrown
   * asynchronously after it resolved). Does not block the event loop. Listeners may
   * call the engine meanwhile (nothing is delivered); a second call while it runs
   * returns the same promise, a call after it resolved rejects with `SSE_SHUT_DOWN`.
   */
  close(options?: CloseOptions): Promise<void>;

  on<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): this;
  once<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): this;
  off<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): this;
  addListener<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): this;
  removeListener<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): this;
  emit<K extends keyof EngineEvents>(event: K, ...args: EngineEvents[K]): boolean;
}
