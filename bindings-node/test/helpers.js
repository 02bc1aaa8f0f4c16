'use strict';
// Shared pieces of the tests: a raw SSE client over TCP, an SSE parser, waiting,
// servers on loopback and a self-signed certificate made with openssl.

const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { once } = require('node:events');

/** Waits until `predicate()` is truthy (polling), or fails after `timeoutMs`. */
async function waitFor(predicate, { timeoutMs = 5000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Incremental parser of an SSE body (after the response head), as EventSource does. */
class SseParser {
  constructor() {
    this.buffer = '';
    this.events = [];
    this.comments = 0;
    this.retry = null;
    this.current = { data: [], event: undefined, id: undefined };
  }

  feed(text) {
    this.buffer += text;
    let newline;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) !== -1) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.current.data.length > 0) {
        this.events.push({ data: this.current.data.join('\n'), event: this.current.event, id: this.current.id });
      }
      this.current = { data: [], event: undefined, id: undefined };
      return;
    }
    if (line.startsWith(':')) {
      this.comments += 1;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.current.data.push(value);
    else if (field === 'event') this.current.event = value;
    else if (field === 'id') this.current.id = value;
    else if (field === 'retry') this.retry = Number(value);
  }
}

/**
 * A raw HTTP/1.1 SSE client over TCP: sends the request, parses the head and the
 * events, and records how the connection ended (`end` = FIN, `error` = RST...).
 */
class RawClient {
  constructor(port, { path: target = '/sse', headers = {}, host = '127.0.0.1', body } = {}) {
    this.socket = net.connect(port, host);
    this.head = null;
    this.status = null;
    this.headers = {};
    this.raw = '';
    this.parser = new SseParser();
    this.ended = false;
    this.error = null;
    this.closed = false;
    let pending = '';
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk) => {
      this.raw += chunk;
      if (this.head === null) {
        pending += chunk;
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) return;
        this.head = pending.slice(0, end);
        const [statusLine, ...lines] = this.head.split('\r\n');
        this.status = Number(statusLine.split(' ')[1]);
        for (const line of lines) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          this.headers[name] = this.headers[name] === undefined ? value : `${this.headers[name]}, ${value}`;
        }
        chunk = pending.slice(end + 4);
        pending = '';
      }
      this.parser.feed(chunk);
    });
    this.socket.on('end', () => {
      this.ended = true;
    });
    this.socket.on('error', (err) => {
      this.error = err;
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    const lines = [`GET ${target} HTTP/1.1`, `Host: ${host}:${port}`, 'Accept: text/event-stream'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n${body === undefined ? '' : body}`);
  }

  get events() {
    return this.parser.events;
  }

  async waitForHead() {
    await waitFor(() => this.head !== null || this.closed, { what: 'the response head' });
    return this.status;
  }

  async waitForEvents(n, timeoutMs = 5000) {
    await waitFor(() => this.events.length >= n, { timeoutMs, what: `${n} events (got ${this.events.length})` });
    return this.events;
  }

  close() {
    this.socket.destroy();
  }
}

/** Listens on an ephemeral loopback port; returns the port. */
async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server.address().port;
}

/** A self-signed certificate for localhost, made with openssl in a temporary folder. */
function selfSignedCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sse-engine-cert-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  const result = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
  fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

/** Records lifecycle events of an engine. */
function recorder(engine) {
  const log = [];
  engine.on('connect', (id, mode) => log.push({ type: 'connect', id, mode }));
  engine.on('disconnect', (id, reason) => log.push({ type: 'disconnect', id, reason }));
  engine.on('gap', (id) => log.push({ type: 'gap', id }));
  log.find = (type, id) => Array.prototype.find.call(log, (e) => e.type === type && (id === undefined || e.id === id));
  return log;
}

module.exports = { RawClient, SseParser, listen, recorder, selfSignedCert, sleep, waitFor };
