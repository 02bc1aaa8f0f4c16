// Type declarations of `sse-engine/fastify`. Structural, so the package does not
// depend on Fastify's own types; with Fastify installed, `reply.sse` is typed too.
import type { ConnectOptions, Engine } from '../index';

export interface SsePluginOptions {
  engine: Engine;
  /** Close the engine when Fastify closes (default true). */
  closeOnShutdown?: boolean;
}

/**
 * The plugin: `fastify.register(ssePlugin, { engine })` adds `reply.sse(options)`
 * (returns the client id, or null when a limit refused the client: it was answered
 * 503) and `fastify.sseEngine`.
 */
export declare function ssePlugin(
  fastify: unknown,
  options: SsePluginOptions,
  done: (err?: Error) => void,
): void;
export default ssePlugin;

declare module 'fastify' {
  interface FastifyReply {
    sse(options?: ConnectOptions): number | null;
  }
  interface FastifyInstance {
    sseEngine: Engine;
  }
}
