#!/usr/bin/env bash
# The Node binding's tests from a fresh checkout: install the npm dev dependencies
# (pinned by package-lock.json), build the addon from source (release: the memory and
# event-loop tests measure it) and the test-only fault-injection addon, run `npm test`
# (node:test; its summary closes the output). Needs Node.js >= 20 with npm, cargo, and openssl (the TLS tests make a
# self-signed certificate); openssl is installed with apt when missing.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "bindings-node: Node.js >= 20 with npm is required" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "bindings-node: Node.js >= 20 is required, found $(node --version)" >&2
  exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bindings-node: installing openssl"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openssl >/dev/null
fi

# The scale test holds 10,000 connections in each of two processes.
hard=$(ulimit -Hn)
want=20000
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want"

# `npm install` with the committed lock (it pins every version). Not `npm ci`: some
# platform packages of @napi-rs/cli's optional dependencies are not on the registry,
# so npm cannot record them and `npm ci` refuses a lock without them.
npm install --no-audit --no-fund --loglevel=error
npm run build
# test/panic.test.js loads a second addon with the test-only panic hooks (cargo feature
# `fault-injection`), built into target/fault-injection/; only the binding crate is
# compiled again for it.
npm run build:fault
npm test
