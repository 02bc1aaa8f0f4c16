'use strict';
// Fastify plugin: `reply.sse(options)` hands the request over to the engine.
//
//   const { Engine } = require('sse-engine');
//   const { ssePlugin } = require('sse-engine/fastify');
//   await fastify.register(ssePlugin, { engine: new Engine() });
//   fastify.get('/events', { onRequest: auth }, (request, reply) => {
//     reply.sse({ channels: ['news'], user: request.user.id });
//   });
//
// Fastify's hooks before the handler (onRequest, preHandler, ...) run as usual. The
// reply is hijacked: Fastify sends nothing itself. Headers set with `reply.header()`
// go out with the stream. With `http2: true` or `https` the client is served in
// stream mode through `reply.raw`.

const { Engine } = require('../index');
const { argType } = require('./errors');

function ssePlugin(fastify, options, done) {
  const engine = options && options.engine;
  if (!(engine instanceof Engine)) {
    done(argType('options.engine', 'an Engine', engine));
    return;
  }
  fastify.decorate('sseEngine', engine);
  fastify.decorateReply('sse', function sse(connectOptions = {}) {
    if (connectOptions === null || typeof connectOptions !== 'object') {
      throw argType('options', 'an object', connectOptions);
    }
    const reply = this;
    const headers = { ...reply.getHeaders(), ...(connectOptions.headers || {}) };
    let id;
    try {
      id = engine.connect(reply.request.raw, reply.raw, { ...connectOptions, headers });
    } catch (err) {
      if (err.code !== 'SSE_LIMIT_REACHED') throw err;
      // The client was answered 503 already.
      reply.hijack();
      return null;
    }
    reply.hijack();
    return id;
  });
  if (options.closeOnShutdown !== false) {
    fastify.addHook('onClose', async () => {
      if (!engine.closed) await engine.close();
    });
  }
  done();
}

// Not encapsulated: `reply.sse` is available to every route (what fastify-plugin does).
ssePlugin[Symbol.for('skip-override')] = true;
ssePlugin[Symbol.for('fastify.display-name')] = 'sse-engine';
ssePlugin[Symbol.for('plugin-meta')] = { name: 'sse-engine', fastify: '>=4' };

module.exports = { ssePlugin, default: ssePlugin };
