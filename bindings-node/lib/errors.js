'use strict';
// Errors raised by the JavaScript layer itself: argument types it checks before
// calling the engine, and hand-over refusals. Engine errors are mapped once, in the
// native error adapter (src/error.rs), with the same `code` values.

const { inspect } = require('node:util');

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') {
    const name = value.constructor && value.constructor.name;
    return name ? `an instance of ${name}` : inspect(value, { depth: 0 });
  }
  let shown = inspect(value);
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `type ${typeof value} (${shown})`;
}

/** A TypeError naming the argument, with code SSE_INVALID_ARGUMENT. */
function argType(name, expected, value) {
  const err = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`);
  err.code = 'SSE_INVALID_ARGUMENT';
  return err;
}

/** A TypeError for a value of the right type that is still unusable. */
function argValue(name, reason) {
  const err = new TypeError(`The "${name}" argument ${reason}`);
  err.code = 'SSE_INVALID_ARGUMENT';
  return err;
}

/** An Error with a code: hand-over refusals and state errors. */
function stateError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

module.exports = { argType, argValue, stateError, describe };
