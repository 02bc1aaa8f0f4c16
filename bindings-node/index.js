'use strict';
// sse-engine for Node.js: the JavaScript API over the native addon.
//
// The engine (Rust, on its own reactor thread) owns every SSE connection: wire
// format, channels, history and replay, heartbeats, slow clients, limits. This layer
// converts arguments, hands requests over (lib/handover.js), drains lifecycle events
// into an EventEmitter and, in stream mode, copies a client's bytes to its response.

const { EventEmitter } = require('node:events');
const native = require('./native.js');
const { argType, argValue, stateError } = require('./lib/errors');
const handover = require('./lib/handover');

const DISCONNECT_REASONS = Object.freeze(native.disconnectReasons());

// Lifecycle event kinds, as the native queue numbers them (src/events.rs).
const CONNECTED = 0;
const DISCONNECTED = 1;
const GAP = 2;
const READABLE = 3;
const CLOSED = 4;

/** Most bytes taken from the engine per write to a stream-mode response. */
const STREAM_CHUNK = 64 * 1024;

const ENGINE_OPTIONS = new Set([
  'threads',
  'heartbeatMs',
  'retryMs',
  'maxQueueBytes',
  'maxClients',
  'maxClientsPerChannel',
  'writeTimeoutMs',
  'busyRetryAfterSecs',
  'autoIds',
  'history',
  'maxReplay',
  'gapEvent',
]);
const CONNECT_OPTIONS = new Set(['channels', 'user', 'metadata', 'headers', 'lastEventId', 'retry', 'mode']);
const EVENT_OPTIONS = new Set(['event', 'id', 'retry']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function checkKeys(name, object, allowed) {
  for (const key of Object.keys(object)) {
    if (!allowed.has(key)) throw argValue(name, `has an unknown option ${JSON.stringify(key)}`);
  }
}

function optionsObject(name, value) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw argType(name, 'an object', value);
  return value;
}

function string(name, value) {
  if (typeof value !== 'string') throw argType(name, 'a string', value);
  return value;
}

function optionalString(name, value) {
  if (value === undefined || value === null) return undefined;
  return string(name, value);
}

function number(name, value) {
  if (typeof value !== 'number') throw argType(name, 'a number', value);
  return value;
}

function optionalNumber(name, value) {
  if (value === undefined || value === null) return undefined;
  return number(name, value);
}

/** Milliseconds where null, false and 0 all mean "off" (sent to the engine as 0). */
function optionalOffMs(name, value) {
  if (value === undefined) return undefined;
  if (value === null || value === false) return 0;
  return number(name, value);
}

function clientId(value) {
  // Range (a non-negative integer) is checked natively, with a RangeError.
  return number('clientId', value);
}

/** Event data: strings as they are, bytes as UTF-8, anything else as JSON. */
function eventData(data, name = 'data') {
  if (typeof data === 'string') return data;
  if (data instanceof Uint8Array) {
    try {
      return utf8.decode(data);
    } catch {
      const err = argValue(name, 'is not valid UTF-8');
      err.code = 'SSE_INVALID_UTF8';
      throw err;
    }
  }
  const json = jsonOf(name, data);
  if (json === undefined) throw argType(name, 'a string or a JSON-serializable value', data);
  return json;
}

/**
 * `value` as JSON text. A value JSON cannot hold (a cycle, a BigInt, a `toJSON` that
 * throws) is a TypeError with code SSE_INVALID_ARGUMENT naming the argument; the
 * serializer's own error is its `cause`.
 */
function jsonOf(name, value) {
  try {
    return JSON.stringify(value);
  } catch (cause) {
    const err = argValue(name, `cannot be serialized as JSON: ${cause && cause.message}`);
    err.cause = cause;
    throw err;
  }
}

const PUBLISH_KEYS = new Set(['channel', 'data', 'event', 'id', 'retry']);

/** A column of `broadcastMany` for an optional field, created when an item first has it. */
function column(existing, length, i, value) {
  const out = existing === undefined ? new Array(length).fill(undefined) : existing;
  out[i] = value;
  return out;
}

/**
 * The items of `broadcastMany` as the native columns: channels, data, and the event,
 * id and retry columns (undefined when no item has that field).
 */
function publishColumns(items) {
  if (!Array.isArray(items)) throw argType('items', 'an array', items);
  const n = items.length;
  const channels = new Array(n);
  const data = new Array(n);
  let events;
  let ids;
  let retries;
  for (let i = 0; i < n; i++) {
    const item = items[i];
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw argType(`items[${i}]`, 'an object { channel, data, event?, id?, retry? }', item);
    }
    for (const key in item) {
      if (!PUBLISH_KEYS.has(key)) throw argValue(`items[${i}]`, `has an unknown key ${JSON.stringify(key)}`);
    }
    if (typeof item.channel !== 'string') throw argType(`items[${i}].channel`, 'a string', item.channel);
    channels[i] = item.channel;
    data[i] = eventData(item.data, `items[${i}].data`);
    if (item.event !== undefined && item.event !== null) {
      events = column(events, n, i, string(`items[${i}].event`, item.event));
    }
    if (item.id !== undefined && item.id !== null) {
      ids = column(ids, n, i, string(`items[${i}].id`, item.id));
    }
    if (item.retry !== undefined && item.retry !== null) {
      retries = column(retries, n, i, number(`items[${i}].retry`, item.retry));
    }
  }
  return [channels, data, events, ids, retries];
}

/** `{ event, id, retry }` as the native argument list. */
function eventFields(options) {
  if (options === undefined || options === null) return [undefined, undefined, undefined];
  const o = optionsObject('options', options);
  checkKeys('options', o, EVENT_OPTIONS);
  return [
    optionalString('options.event', o.event),
    optionalString('options.id', o.id),
    optionalNumber('options.retry', o.retry),
  ];
}

function metadataJson(name, value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || Array.isArray(value)) throw argType(name, 'an object or JSON text', value);
  return jsonOf(name, value);
}

function engineOptions(options) {
  const o = optionsObject('options', options);
  checkKeys('options', o, ENGINE_OPTIONS);
  const history = optionsObject('options.history', o.history);
  checkKeys('options.history', history, new Set(['maxEvents', 'maxAgeMs']));
  if (o.autoIds !== undefined && typeof o.autoIds !== 'boolean') {
    throw argType('options.autoIds', 'a boolean', o.autoIds);
  }
  if (o.gapEvent !== undefined && o.gapEvent !== null && o.gapEvent !== false && typeof o.gapEvent !== 'string') {
    throw argType('options.gapEvent', 'a string, null or false', o.gapEvent);
  }
  return {
    threads: optionalNumber('options.threads', o.threads),
    heartbeatMs: optionalOffMs('options.heartbeatMs', o.heartbeatMs),
    retryMs: optionalNumber('options.retryMs', o.retryMs),
    maxQueueBytes: optionalNumber('options.maxQueueBytes', o.maxQueueBytes),
    maxClients: optionalNumber('options.maxClients', o.maxClients),
    maxClientsPerChannel: optionalNumber('options.maxClientsPerChannel', o.maxClientsPerChannel),
    writeTimeoutMs: optionalOffMs('options.writeTimeoutMs', o.writeTimeoutMs),
    busyRetryAfterSecs: optionalNumber('options.busyRetryAfterSecs', o.busyRetryAfterSecs),
    autoIds: o.autoIds,
    historyMaxEvents: optionalNumber('options.history.maxEvents', history.maxEvents),
    historyMaxAgeMs: optionalNumber('options.history.maxAgeMs', history.maxAgeMs),
    maxReplay: optionalNumber('options.maxReplay', o.maxReplay),
    gapEvent: typeof o.gapEvent === 'string' ? o.gapEvent : undefined,
    noGapEvent: o.gapEvent === null || o.gapEvent === false,
  };
}

function channelList(value) {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw argType('options.channels', 'a string or an array of strings', value);
  return value.map((channel, i) => string(`options.channels[${i}]`, channel));
}

/**
 * The function the native event queue calls with each batch. The threadsafe function
 * holds it through a strong persistent reference (a GC root) for as long as the
 * native engine lives, so it reaches the Engine only through a WeakRef: a strong
 * reference would make every Engine reachable from that root, and an engine dropped
 * without close() would never be collected nor shut down. Once the Engine is
 * collected, its native object is finalized, and dropping it shuts the engine down as
 * Rust's `Drop` does; events still queued then have nobody left to reach.
 */
function eventDrain(engineRef) {
  return (batch) => {
    const engine = engineRef.deref();
    if (engine !== undefined) engine._onEvents(batch);
  };
}

function rethrow(err) {
  throw err;
}

/** Stream mode: one response the engine's bytes are copied to. */
class StreamClient {
  constructor(res) {
    this.res = res;
    /** `res.write` returned false: wait for 'drain' before taking more. */
    this.blocked = false;
    /** The engine reported bytes while blocked. */
    this.pending = false;
  }
}

class Engine extends EventEmitter {
  /**
   * Starts an engine (its reactor threads run until `close()`).
   * @param {import('./index').EngineOptions} [options]
   */
  constructor(options) {
    super();
    this._streams = new Map();
    this._closed = false;
    /** While close() runs: `{ promise, resolve, reject, errors }` (errors: listeners'). */
    this._closing = null;
    this._native = new native.NativeEngine(engineOptions(options), eventDrain(new WeakRef(this)));
  }

  /** True once `close()` was called. */
  get closed() {
    return this._closed;
  }

  /**
   * Hands the request over and returns the client id. Plain `http`: the engine takes
   * the socket (socket mode). TLS, HTTP/2 or no descriptor: stream mode.
   */
  connect(req, res, options) {
    if (req === null || typeof req !== 'object' || typeof req.headers !== 'object') {
      throw argType('req', 'an http.IncomingMessage or Http2ServerRequest', req);
    }
    if (res === null || typeof res !== 'object' || typeof res.writeHead !== 'function') {
      throw argType('res', 'an http.ServerResponse or Http2ServerResponse', res);
    }
    const o = optionsObject('options', options);
    checkKeys('options', o, CONNECT_OPTIONS);
    const mode = o.mode === undefined ? 'auto' : o.mode;
    if (mode !== 'auto' && mode !== 'socket' && mode !== 'stream') {
      throw argValue('options.mode', `must be 'auto', 'socket' or 'stream'. Received ${JSON.stringify(mode)}`);
    }
    const input = {
      channels: channelList(o.channels),
      user: optionalString('options.user', o.user),
      metadata: metadataJson('options.metadata', o.metadata),
      lastEventId: o.lastEventId === undefined ? handover.lastEventIdOf(req) : optionalString('options.lastEventId', o.lastEventId),
      retryMs: optionalNumber('options.retry', o.retry),
    };
    if (o.headers !== undefined && o.headers !== null && typeof o.headers !== 'object') {
      throw argType('options.headers', 'an object or a list of [name, value] pairs', o.headers);
    }
    this._checkOpen();
    handover.checkRequest(req, res);
    const blocker = handover.socketBlocker(req);
    if (mode === 'socket' && blocker !== null) {
      throw stateError('SSE_BAD_SOCKET', `this request's socket cannot be handed over (${blocker}): use stream mode`);
    }
    if (mode !== 'stream' && blocker === null) {
      input.headers = handover.flatHeaders(res, o.headers);
      try {
        return handover.handOverSocket(this._native, req, res, input);
      } catch (err) {
        // Not a TCP socket after all (a Unix socket, say): stream mode serves it.
        if (err.code !== 'SSE_BAD_SOCKET' || mode === 'socket') throw err;
        delete input.headers;
      }
    }
    return this._connectStream(req, res, input, o.headers);
  }

  _connectStream(req, res, input, extraHeaders) {
    const head = handover.streamHead(req, res, extraHeaders);
    let id;
    try {
      id = this._native.connectStream(input);
    } catch (err) {
      if (err.code === 'SSE_LIMIT_REACHED') handover.refuseBusy(req, res, this._native.busyRetryAfterSecs);
      throw err;
    }
    const client = new StreamClient(res);
    this._streams.set(id, client);
    res.on('drain', () => {
      client.blocked = false;
      if (client.pending) {
        client.pending = false;
        this._pump(id, client);
      }
    });
    res.on('close', () => {
      // The response closed before the engine ended it: the client went away.
      if (this._streams.get(id) !== client) return;
      this._streams.delete(id);
      try {
        this._native.closeStream(id);
      } catch {
        // The engine closed meanwhile: its shutdown ends the client anyway.
      }
    });
    // A write to a vanished client fails; 'close' follows and ends the client.
    res.on('error', () => {});
    handover.writeStreamHead(req, res, head);
    return id;
  }

  /** Stream mode: copies what the engine queued for `id` to its response. */
  _pump(id, client) {
    if (client.blocked) {
      client.pending = true;
      return;
    }
    let bytes;
    try {
      bytes = this._native.takeStream(id, STREAM_CHUNK);
    } catch (err) {
      // After the engine stopped there is nothing left to take.
      if (err.code === 'SSE_SHUT_DOWN') return;
      throw err;
    }
    // Bytes left behind are reported again (READABLE); a gone client gives null.
    if (bytes === null || bytes.length === 0) return;
    if (!client.res.write(bytes)) client.blocked = true;
  }

  _onEvents(batch) {
    // A listener that throws does not stop the batch: the rest is still delivered,
    // then its error surfaces as an uncaught exception (the native dispatch is the
    // caller). While close() runs, errors wait until close() has resolved, so that a
    // throwing listener cannot stop the shutdown (see _finishClose).
    let failure = null;
    for (let i = 0; i < batch.length; i += 3) {
      const kind = batch[i];
      const id = batch[i + 1];
      try {
        if (kind === READABLE) {
          const client = this._streams.get(id);
          if (client) this._pump(id, client);
        } else if (kind === CONNECTED) {
          this.emit('connect', id, this._streams.has(id) ? 'stream' : 'socket');
        } else if (kind === DISCONNECTED) {
          const client = this._streams.get(id);
          if (client) {
            // The engine let us take everything queued before it ended the client.
            this._streams.delete(id);
            client.res.end();
          }
          this.emit('disconnect', id, DISCONNECT_REASONS[batch[i + 2]]);
        } else if (kind === GAP) {
          this.emit('gap', id);
        } else if (kind === CLOSED) {
          this._finishClose();
        }
      } catch (err) {
        if (this._closing !== null) this._closing.errors.push(err);
        else if (failure === null) failure = err;
      }
    }
    if (failure !== null) throw failure;
  }

  _checkOpen() {
    if (this._closed) throw stateError('SSE_SHUT_DOWN', 'the engine is closed (close() was called)');
  }

  /**
   * Which mode a connected client was handed over in: 'socket', 'stream', or null
   * when no such client is connected.
   */
  modeOf(id) {
    clientId(id);
    if (this._streams.has(id)) return 'stream';
    return this.isConnected(id) ? 'socket' : null;
  }

  isConnected(id) {
    clientId(id);
    return this._native.isConnected(id);
  }

  send(id, data, options) {
    clientId(id);
    return this._native.send(id, eventData(data), ...eventFields(options));
  }

  sendToUser(user, data, options) {
    string('user', user);
    return this._native.sendToUser(user, eventData(data), ...eventFields(options));
  }

  broadcast(channel, data, options) {
    string('channel', channel);
    return this._native.broadcast(channel, eventData(data), ...eventFields(options));
  }

  broadcastMany(items) {
    return this._native.broadcastMany(...publishColumns(items));
  }

  broadcastAll(data, options) {
    return this._native.broadcastAll(eventData(data), ...eventFields(options));
  }

  broadcastWhere(channel, filter, data, options) {
    string('channel', channel);
    let filterJson = filter;
    if (typeof filter !== 'string') {
      if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
        throw argType('filter', 'an object or JSON text', filter);
      }
      filterJson = jsonOf('filter', filter);
    }
    return this._native.broadcastWhere(channel, filterJson, eventData(data), ...eventFields(options));
  }

  subscribe(id, channel) {
    clientId(id);
    return this._native.subscribe(id, string('channel', channel));
  }

  unsubscribe(id, channel) {
    clientId(id);
    return this._native.unsubscribe(id, string('channel', channel));
  }

  disconnect(id) {
    clientId(id);
    return this._native.disconnect(id);
  }

  getClient(id) {
    clientId(id);
    return this._native.getClient(id);
  }

  clients() {
    return this._native.clients();
  }

  clientsIn(channel) {
    return this._native.clientsIn(string('channel', channel));
  }

  clientsOf(user) {
    return this._native.clientsOf(string('user', user));
  }

  channels() {
    return this._native.channels();
  }

  clientCount() {
    return this._native.clientCount();
  }

  channelCount(channel) {
    return this._native.channelCount(string('channel', channel));
  }

  userCount(user) {
    return this._native.userCount(string('user', user));
  }

  setMetadata(id, metadata) {
    clientId(id);
    if (metadata === undefined) throw argType('metadata', 'an object, JSON text or null', metadata);
    return this._native.setMetadata(id, metadataJson('metadata', metadata));
  }

  closeChannel(channel, options) {
    string('channel', channel);
    const o = optionsObject('options', options);
    checkKeys('options', o, new Set(['disconnect']));
    if (o.disconnect !== undefined && typeof o.disconnect !== 'boolean') {
      throw argType('options.disconnect', 'a boolean', o.disconnect);
    }
    return this._native.closeChannel(channel, o.disconnect === true);
  }

  removeEmptyChannels() {
    return this._native.removeEmptyChannels();
  }

  configureChannel(channel, history) {
    string('channel', channel);
    const o = optionsObject('history', history);
    checkKeys('history', o, new Set(['maxEvents', 'maxAgeMs']));
    this._native.configureChannel(channel, number('history.maxEvents', o.maxEvents), number('history.maxAgeMs', o.maxAgeMs));
  }

  config() {
    return this._native.config();
  }

  stats() {
    return this._native.stats();
  }

  metrics() {
    return this._native.metrics();
  }

  /** Keeps the process alive while the engine is open (by default it does not). */
  ref() {
    if (!this._closed) this._native.setRef(true);
    return this;
  }

  /** Lets the process exit while the engine is open (the default). */
  unref() {
    if (!this._closed) this._native.setRef(false);
    return this;
  }

  /**
   * Stops taking clients, sends `lastEvent` to everyone if given, flushes for up to
   * `timeoutMs` (default 1000), then closes every client (reason 'shutdown'). Resolves
   * once every lifecycle event of the shutdown was emitted. Runs off the event loop.
   * Until it resolves, other calls answer quietly (nothing delivered, nobody found) and
   * a second close() returns the same promise; afterwards they throw SSE_SHUT_DOWN.
   */
  close(options) {
    try {
      const o = optionsObject('options', options);
      checkKeys('options', o, new Set(['timeoutMs', 'lastEvent']));
      const timeoutMs = o.timeoutMs === undefined ? 1000 : number('options.timeoutMs', o.timeoutMs);
      let last = [];
      if (o.lastEvent !== undefined && o.lastEvent !== null) {
        const e = optionsObject('options.lastEvent', o.lastEvent);
        checkKeys('options.lastEvent', e, new Set(['data', 'event', 'id', 'retry']));
        if (e.data === undefined) throw argType('options.lastEvent.data', 'a string or a JSON-serializable value', e.data);
        last = [eventData(e.data), ...eventFields({ event: e.event, id: e.id, retry: e.retry })];
      }
      // A listener of the shutdown may close again: it waits for the same shutdown.
      if (this._closing !== null) return this._closing.promise;
      this._checkOpen();
      this._native.close(timeoutMs, ...last);
    } catch (err) {
      return Promise.reject(err);
    }
    this._closed = true;
    const closing = { promise: null, resolve: null, reject: null, errors: [] };
    closing.promise = new Promise((resolve, reject) => {
      closing.resolve = resolve;
      closing.reject = reject;
    });
    this._closing = closing;
    return closing.promise;
  }

  _finishClose() {
    // Responses the shutdown did not end (none, normally) end now.
    for (const client of this._streams.values()) client.res.end();
    this._streams.clear();
    const closing = this._closing;
    this._closing = null;
    try {
      this._native.finishClose();
      if (closing) closing.resolve();
    } catch (err) {
      if (closing) closing.reject(err);
    }
    // What listeners threw during the shutdown surfaces now, as uncaught exceptions,
    // after whoever awaited close() went on (setImmediate runs after the promise jobs).
    if (closing) for (const err of closing.errors) setImmediate(rethrow, err);
  }
}

module.exports = {
  Engine,
  DISCONNECT_REASONS,
  VERSION: native.VERSION,
};
