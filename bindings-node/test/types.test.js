'use strict';
// The TypeScript declarations cover every export: a program using all of them
// type-checks under `strict`.
const { test } = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

test('TypeScript declarations type-check a program using every export', () => {
  const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { encoding: 'utf8' });
  assert.strictEqual(result.status, 0, `tsc failed:\n${result.stdout}${result.stderr}`);
});
