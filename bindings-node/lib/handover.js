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

const { argValue, stateError } = require('./errors');
const native = require('../native.js');

// Node's own helper that releases an HTTP parser (the one its upgrade path uses).
let freeParser = null;
try {
  ({ freeParser } = require('_http_common'));
} catch {
  // A runtime without it: the parser is left to the garbage collector.
}

// Every HTTP rule (the response heads, the 503 answer, which headers may be added,
// where Last-Event-ID comes from) is the engine's (`sse_engine::http`): this file only
// gathers the request's and the framework's values and writes what the engine answers.

/** Response headers the engine writes itself (lower case). */
const ENGINE_HEADERS = new Set(native.engineHeaders());

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

/**
 * The request's `Last-Event-ID` by the engine's rule: the header wins, else the first
 * `lastEventId` query parameter; trimmed; empty means none.
 */
function lastEventIdOf(req) {
  const header = req.headers['last-event-id'];
  const url = typeof req.originalUrl === 'string' ? req.originalUrl : req.url || '';
  const query = url.indexOf('?');
  const id = native.lastEventId(typeof header === 'string' ? header : null, query === -1 ? null : url.slice(query + 1));
  return id === null ? undefined : id;
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
 * of [name, value] pairs; later ones win), as a flat `[name, value, name, value, ...]`
 * list (a header with several values appears once per value).
 */
function headerList(res, extra) {
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
  const flat = [];
  for (const { name, values } of headers.values()) {
    for (const value of values) flat.push(name, value);
  }
  return flat;
}

/** `[name, value, ...]` as the headers object of `res.writeHead` (repeated names: arrays). */
function headersObject(flat) {
  const head = new Map();
  for (let i = 0; i < flat.length; i += 2) {
    const [name, value] = [flat[i], flat[i + 1]];
    const seen = head.get(name);
    head.set(name, seen === undefined ? value : [].concat(seen, value));
  }
  return Object.fromEntries(head);
}

/** Socket mode: the headers as the engine takes them (the engine's own dropped, the
 * rest checked), `[name, value, name, value, ...]`. */
function flatHeaders(res, extra) {
  return native.extraHeaders(headerList(res, extra), false);
}

/**
 * Stream mode: the response head the host writes (the engine's `streamHead`: status
 * 200, the SSE headers, then the framework's and the caller's), checked before the
 * client is registered so a bad header fails the hand-over instead of an already
 * started stream.
 */
function streamHead(req, res, extra) {
  const { status, headers } = native.streamHead(headerList(res, extra), isHttp2(req));
  return { status, head: headersObject(headers), h2: isHttp2(req) };
}

/** Stream mode: writes the head `streamHead` made. */
function writeStreamHead(req, res, { status, head, h2 }) {
  // The head holds every header `res` had that may go out: the rest must not.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.writeHead(status, head);
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
    if (err.fdTaken) {
      // The engine took its duplicate (a limit: it answered 503 and closed it): Node
      // lets go too.
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

/** Stream mode: a limit refused the client; writes the engine's 503 answer. */
function refuseBusy(req, res, retryAfterSecs) {
  const { status, headers, body } = native.busyAnswer(retryAfterSecs, isHttp2(req));
  res.writeHead(status, headersObject(headers));
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
