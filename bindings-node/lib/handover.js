'use strict';
// Handing an HTTP request over to the engine, for Node's `http`, `https` and `http2`
// servers and every framework built on them (Express, Fastify, ...).
//
// Socket mode (plain `http`): the engine gets a duplicate of the request's socket and
// writes the response itself. Node's side is then taken apart the way Node itself
// does for an `upgrade`: reading stops, the HTTP server's listeners and parser are
// released, and Node's socket is destroyed without being ended, so the shared
// connection sees no FIN and no RST, and the app's `req`/`res` never emit `close`.
// Nothing per connection stays in Node.
//
// Stream mode (TLS, HTTP/2, no file descriptor): the engine keeps the client's state
// and queues its bytes; the JavaScript layer writes them to `res` (see index.js).

const { validateHeaderName, validateHeaderValue } = require('node:http');
const { argValue, stateError } = require('./errors');
const native = require('../native.js');

// Node's own helper that releases an HTTP parser (the one its upgrade path uses).
let freeParser = null;
try {
  ({ freeParser } = require('_http_common'));
} catch {
  // A runtime without it: the parser is left to the garbage collector.
}

/** Response headers the engine writes itself; when the framework set them on `res`,
 * the engine's values win. */
const ENGINE_HEADERS = new Set(native.engineHeaders());

/** Connection-specific headers an HTTP/2 response must not carry (RFC 9113 §8.2.2). */
const HTTP2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const HTTP2_SKIP = new Set([...ENGINE_HEADERS, ...HTTP2_FORBIDDEN]);

/** The listeners Node's HTTP server puts on a connection's socket (lib/_http_server.js). */
const SERVER_SOCKET_LISTENERS = new Set([
  'bound socketOnData',
  'bound socketOnEnd',
  'bound socketOnClose',
  'bound socketOnDrain',
  'socketOnError',
  'socketOnTimeout',
  'onSocketResume',
  'onSocketPause',
]);
const SOCKET_EVENTS = ['data', 'end', 'close', 'drain', 'error', 'timeout', 'resume', 'pause'];

function isHttp2(req) {
  return req.httpVersionMajor === 2 || (typeof req.stream === 'object' && req.stream !== null && 'session' in req.stream);
}

/** The request's `Last-Event-ID`: the header, else the `lastEventId` query parameter. */
function lastEventIdOf(req) {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string' && header !== '') return header;
  const url = typeof req.originalUrl === 'string' ? req.originalUrl : req.url || '';
  const query = url.indexOf('?');
  if (query === -1) return undefined;
  const value = new URLSearchParams(url.slice(query + 1)).get('lastEventId');
  return value === null || value === '' ? undefined : value;
}

/** Refusals that apply in both modes. */
function checkRequest(req, res) {
  if (res.headersSent || res.writableEnded) {
    throw stateError(
      'SSE_HEADERS_SENT',
      'the response head was already sent: call connect() before writing to the response',
    );
  }
  const length = req.headers['content-length'];
  if ((length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined) {
    throw stateError(
      'SSE_REQUEST_HAS_BODY',
      'the request has a body: an event stream is requested with GET and no body',
    );
  }
  const gone = isHttp2(req) ? !res.stream || res.stream.destroyed : !req.socket || req.socket.destroyed;
  if (gone) throw stateError('SSE_CLIENT_GONE', 'the client closed the connection before the hand-over');
}

/** Why this request's socket cannot be handed over, or null when it can. */
function socketBlocker(req) {
  if (isHttp2(req)) return 'HTTP/2';
  const socket = req.socket;
  if (socket.encrypted) return 'TLS';
  const handle = socket._handle;
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0 || typeof handle.readStop !== 'function') {
    return 'no file descriptor';
  }
  return null;
}

function addHeader(headers, name, value) {
  if (value === undefined || value === null) return;
  const values = Array.isArray(value) ? value.map(String) : [String(value)];
  headers.set(String(name).toLowerCase(), { name: String(name), values });
}

/**
 * The headers the framework already set on `res`, then `extra` (an object or a list
 * of [name, value] pairs; later ones win), without those named in `skip`, as a Map
 * from the lower-case name to `{ name, values }`.
 */
function headerMap(res, extra, skip) {
  const headers = new Map();
  const names = typeof res.getRawHeaderNames === 'function' ? res.getRawHeaderNames() : res.getHeaderNames();
  for (const name of names) addHeader(headers, name, res.getHeader(name));
  if (extra) {
    const pairs = Array.isArray(extra) ? extra : Object.entries(extra);
    for (const pair of pairs) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw argValue('options.headers', 'must be an object or a list of [name, value] pairs');
      }
      addHeader(headers, pair[0], pair[1]);
    }
  }
  for (const key of skip) headers.delete(key);
  return headers;
}

/** Socket mode: the headers as the engine takes them, `[name, value, name, value, ...]`. */
function flatHeaders(res, extra) {
  const flat = [];
  for (const { name, values } of headerMap(res, extra, ENGINE_HEADERS).values()) {
    for (const value of values) flat.push(name, value);
  }
  return flat;
}

/**
 * Stream mode: the response head the host writes (the engine's headers, then the
 * framework's), checked before the client is registered so a bad header fails the
 * hand-over instead of an already started stream.
 */
function streamHead(req, res, extra) {
  const h2 = isHttp2(req);
  const headers = headerMap(res, extra, h2 ? HTTP2_SKIP : ENGINE_HEADERS);
  const head = {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
  };
  if (!h2) head.Connection = 'keep-alive';
  head['X-Accel-Buffering'] = 'no';
  for (const { name, values } of headers.values()) {
    try {
      validateHeaderName(name);
      for (const value of values) validateHeaderValue(name, value);
    } catch (err) {
      throw argValue('options.headers', `has an invalid header ${JSON.stringify(name)}: ${err.message}`);
    }
    head[name] = values.length === 1 ? values[0] : values;
  }
  return { head, h2 };
}

/** Stream mode: writes the head `streamHead` made. */
function writeStreamHead(req, res, { head, h2 }) {
  // Headers set on `res` that this head replaces or that HTTP/2 forbids go first.
  for (const name of res.getHeaderNames()) {
    if (ENGINE_HEADERS.has(name) || (h2 && HTTP2_FORBIDDEN.has(name))) res.removeHeader(name);
  }
  res.writeHead(200, head);
  if (typeof res.flushHeaders === 'function') res.flushHeaders();
  if (!h2 && req.socket && typeof req.socket.setNoDelay === 'function') req.socket.setNoDelay(true);
}

/** Takes the request's socket from Node after the engine took its duplicate. */
function detach(req, res, socket) {
  // The response forgets its socket: it will not emit 'close' (nor ever finish).
  if (socket._httpMessage === res) res.detachSocket(socket);
  // The HTTP server's own listeners go, as for an upgrade: the socket's end is not a
  // client disconnect for the server, and `req` is never aborted.
  for (const event of SOCKET_EVENTS) {
    for (const listener of socket.listeners(event)) {
      if (SERVER_SOCKET_LISTENERS.has(listener.name)) socket.removeListener(event, listener);
    }
  }
  const parser = socket.parser;
  // We may be inside the parser's own callback (connect() called synchronously from
  // the 'request' event): release it once that call has unwound.
  if (parser) setImmediate(releaseParser, parser, req, socket);
  // Node's descriptor closes; the engine's duplicate keeps the connection open.
  // destroy() closes the handle without shutdown(): no FIN, no RST.
  socket.destroy();
}

function releaseParser(parser, req, socket) {
  if (socket.parser !== parser) return;
  if (freeParser) {
    freeParser(parser, req, socket);
  } else {
    socket.parser = null;
    req.parser = null;
  }
}

/**
 * Socket mode: stops Node reading, gives the engine a duplicate of the descriptor
 * (native `connectFd`), then detaches and destroys Node's side. Returns the id.
 */
function handOverSocket(native, req, res, input) {
  const socket = req.socket;
  const handle = socket._handle;
  // The HTTP parser reads the handle directly: pausing the socket is not enough.
  const wasReading = handle.reading;
  handle.reading = false;
  handle.readStop();
  let id;
  try {
    id = native.connectFd(handle.fd, input);
  } catch (err) {
    if (err.code === 'SSE_LIMIT_REACHED') {
      // The engine answered 503 on its duplicate and closed it: Node lets go too.
      detach(req, res, socket);
    } else if (wasReading && socket._handle === handle) {
      // Nothing happened to the connection: Node keeps it, the app may answer.
      handle.reading = true;
      handle.readStart();
    }
    throw err;
  }
  detach(req, res, socket);
  return id;
}

/** Stream mode: a limit refused the client; answer as the engine does in socket mode. */
function refuseBusy(res, retryAfterSecs) {
  const body = 'the server is at capacity, retry later\n';
  res.writeHead(503, {
    'Retry-After': String(retryAfterSecs),
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-cache',
  });
  res.end(body);
}

module.exports = {
  ENGINE_HEADERS,
  checkRequest,
  flatHeaders,
  handOverSocket,
  isHttp2,
  lastEventIdOf,
  refuseBusy,
  socketBlocker,
  streamHead,
  writeStreamHead,
};
