'use strict';
// The Node binding against the engine's one declaration of its settings and counters
// (`sse_engine::schema`, read through the addon's `schema()`). Every setting must be an
// option of `new Engine()` and of `EngineOptions` in index.d.ts, documented with the
// engine's default (`@default`, in Node's unit), and come back from `config()`; every
// counter must be in `stats()` and in `Stats`. A field the engine declares and this
// binding lacks, names otherwise or documents with another default fails here.
//
// Node's names follow one rule: the engine's name in camelCase, a duration's with its
// unit (`Ms`; `Secs` for the one in whole seconds), and the `history_` settings inside
// the `history` object. Durations are in milliseconds, as in the engine's table.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const native = require('../native.js');
const { Engine, DISCONNECT_REASONS } = require('..');

const schema = native.schema();
const DTS = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const UNIT_SUFFIX = { ms: 'Ms', s: 'Secs' };

/** A setting's option name; a `history_` setting is `history.<name>`. */
function optionName(field) {
  const suffix = UNIT_SUFFIX[field.unit] ?? '';
  if (field.name.startsWith('history_')) return `history.${camel(field.name.slice('history_'.length))}${suffix}`;
  return camel(field.name) + suffix;
}

/** Sets `value` at a dotted option name. */
function put(object, name, value) {
  const [head, tail] = name.split('.');
  if (tail === undefined) object[head] = value;
  else (object[head] ??= {})[tail] = value;
  return object;
}

const at = (object, name) => name.split('.').reduce((o, key) => (o === undefined ? undefined : o[key]), object);

/** The engine's defaults under the option names: what `new Engine().config()` gives. */
function defaults() {
  const out = {};
  for (const field of schema.config) put(out, optionName(field), field.default);
  return out;
}

/**
 * The properties of `export interface <name> { ... }` in index.d.ts: name, type, JSDoc
 * text and the `@default` value (undefined without one).
 */
function dtsInterface(name) {
  const start = DTS.indexOf(`export interface ${name} {`);
  assert.notStrictEqual(start, -1, `index.d.ts declares interface ${name}`);
  const body = DTS.slice(DTS.indexOf('{', start) + 1, DTS.indexOf('\n}', start));
  const props = [];
  const property = /(?:\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*)?(\w+)\??:\s*([^;]+);/g;
  for (const [, jsdoc = '', prop, type] of body.matchAll(property)) {
    const text = jsdoc.replace(/^\s*\* ?/gm, '').trim();
    const tag = /@default\s+(.+)/.exec(text);
    let documented;
    if (tag) documented = tag[1].startsWith("'") ? tag[1].slice(1, -1) : JSON.parse(tag[1]);
    props.push({ name: prop, type: type.trim(), text, documented });
  }
  return props;
}

/** EngineOptions with `history` replaced by the properties of HistoryOptions. */
function documentedOptions() {
  const out = [];
  for (const prop of dtsInterface('EngineOptions')) {
    if (prop.type === 'HistoryOptions') {
      for (const sub of dtsInterface('HistoryOptions')) out.push({ ...sub, name: `${prop.name}.${sub.name}` });
    } else {
      out.push(prop);
    }
  }
  return out;
}

/** The counters' names as Node gives them: the disconnects are one object by reason. */
function statsNames() {
  const names = new Set();
  for (const field of schema.stats) names.add(field.name.startsWith('disconnects_') ? 'disconnects' : camel(field.name));
  return [...names].sort();
}

const sorted = (names) => [...names].sort();

test('the addon hands over the engine\'s tables', () => {
  assert.ok(schema.config.length >= 13 && schema.stats.length >= 18);
  const reasons = schema.stats.filter((f) => f.name.startsWith('disconnects_')).map((f) => f.name.slice('disconnects_'.length));
  assert.deepStrictEqual(reasons, DISCONNECT_REASONS);
});

test('EngineOptions in index.d.ts has every setting, typed, with the engine\'s default', () => {
  const documented = documentedOptions();
  assert.deepStrictEqual(sorted(documented.map((p) => p.name)), sorted(schema.config.map(optionName)));
  for (const field of schema.config) {
    const name = optionName(field);
    const prop = documented.find((p) => p.name === name);
    const expected = field.default === null ? undefined : field.default;
    assert.strictEqual(prop.documented, expected, `${name}: @default must be ${expected} (the engine's default)`);
    assert.doesNotMatch(prop.text, /\bDefault\b/, `${name}: state the default once, as @default`);
    const kind = { uint: 'number', bool: 'boolean', text: 'string' }[field.kind];
    assert.ok(prop.type.startsWith(kind), `${name}: ${prop.type} is a ${kind}`);
    assert.strictEqual(/\bnull\b/.test(prop.type), field.off !== null, `${name}: null (unset) is allowed iff the engine's setting may be unset`);
  }
});

test('EngineConfig in index.d.ts has the option names', () => {
  const options = dtsInterface('EngineOptions').map((p) => p.name);
  assert.deepStrictEqual(sorted(dtsInterface('EngineConfig').map((p) => p.name)), sorted(options));
});

test('config() gives the engine\'s defaults under the option names, and they are accepted back', async () => {
  const engine = new Engine();
  const config = engine.config();
  assert.deepStrictEqual(config, defaults());
  const again = new Engine(config);
  assert.deepStrictEqual(again.config(), config);
  await Promise.all([engine.close(), again.close()]);
});

test('every option reaches the engine', async () => {
  for (const field of schema.config) {
    const name = optionName(field);
    const value = { uint: (field.default ?? 0) + 2, bool: !field.default, text: `${field.default}-x` }[field.kind];
    const engine = new Engine(put({}, name, value));
    assert.strictEqual(at(engine.config(), name), value, name);
    await engine.close();
  }
});

test('an unknown option is refused', () => {
  assert.throws(() => new Engine({ heartbeat: 15 }), { name: 'TypeError', message: /unknown option "heartbeat"/ });
  assert.throws(() => new Engine({ history: { size: 1 } }), { name: 'TypeError', message: /unknown option "size"/ });
});

test('Stats in index.d.ts and stats() have every counter', async () => {
  assert.deepStrictEqual(sorted(dtsInterface('Stats').map((p) => p.name)), statsNames());
  const engine = new Engine();
  const stats = engine.stats();
  assert.deepStrictEqual(sorted(Object.keys(stats)), statsNames());
  for (const field of schema.stats) {
    const value = field.name.startsWith('disconnects_')
      ? stats.disconnects[field.name.slice('disconnects_'.length)]
      : stats[camel(field.name)];
    assert.strictEqual(value, field.default, field.name);
  }
  assert.deepStrictEqual(sorted(Object.keys(stats.disconnects)), sorted(DISCONNECT_REASONS));
  await engine.close();
});
