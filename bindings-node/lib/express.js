'use strict';
// Express (and Connect-style) adapter: a route handler that hands the request over.
//
//   const { Engine } = require('sse-engine');
//   const { sse } = require('sse-engine/express');
//   const engine = new Engine();
//   app.get('/events', auth, sse(engine, { channels: (req) => ['news', `user:${req.user.id}`],
//                                          user: (req) => req.user.id }));

const { argType } = require('./errors');

const PER_REQUEST = ['channels', 'user', 'metadata', 'headers', 'lastEventId', 'retry', 'mode'];

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function';
}

/**
 * Resolves per-request options: each option may be a value or a function of the
 * request (sync or async). Returns the options, or a Promise of them.
 */
function resolveOptions(options, req, res) {
  const out = {};
  const waiting = [];
  for (const key of PER_REQUEST) {
    if (!(key in options)) continue;
    const value = typeof options[key] === 'function' ? options[key](req, res) : options[key];
    if (isThenable(value)) {
      waiting.push(value.then((resolved) => { out[key] = resolved; }));
    } else {
      out[key] = value;
    }
  }
  return waiting.length === 0 ? out : Promise.all(waiting).then(() => out);
}

/**
 * A handler `(req, res, next)` that hands the request over to `engine`. Options may
 * be values or functions of `(req, res)`, sync or async. `onConnect(clientId, req, res)`
 * runs after the hand-over. Errors go to `next(err)`; a client refused by a limit has
 * already been answered `503` and is not an error.
 */
function sse(engine, options = {}) {
  if (engine === null || typeof engine !== 'object' || typeof engine.connect !== 'function') {
    throw argType('engine', 'an Engine', engine);
  }
  if (options === null || typeof options !== 'object') throw argType('options', 'an object', options);
  const { onConnect } = options;
  if (onConnect !== undefined && typeof onConnect !== 'function') {
    throw argType('options.onConnect', 'a function', onConnect);
  }
  const handOver = (req, res, next, resolved) => {
    let id;
    try {
      id = engine.connect(req, res, resolved);
    } catch (err) {
      if (err.code !== 'SSE_LIMIT_REACHED') next(err);
      return;
    }
    if (onConnect) onConnect(id, req, res);
  };
  return function sseHandler(req, res, next) {
    let resolved;
    try {
      resolved = resolveOptions(options, req, res);
    } catch (err) {
      next(err);
      return;
    }
    if (isThenable(resolved)) {
      resolved.then((r) => handOver(req, res, next, r), next);
    } else {
      handOver(req, res, next, resolved);
    }
  };
}

module.exports = { sse, resolveOptions };
