// Type declarations of `sse-engine/express`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectOptions, Engine } from '../index';

type Req = IncomingMessage;
type Res = ServerResponse;
/** A value, or a function of the request computing it (sync or async). */
type PerRequest<T> = T | ((req: Req, res: Res) => T | Promise<T>);

export interface SseHandlerOptions {
  channels?: PerRequest<ConnectOptions['channels']>;
  user?: PerRequest<string | undefined>;
  metadata?: PerRequest<ConnectOptions['metadata']>;
  headers?: PerRequest<ConnectOptions['headers']>;
  lastEventId?: PerRequest<string | null | undefined>;
  retry?: PerRequest<number | undefined>;
  mode?: PerRequest<ConnectOptions['mode']>;
  /** Runs after the hand-over with the new client's id. */
  onConnect?: (clientId: number, req: Req, res: Res) => void;
}

/**
 * A request handler `(req, res, next)` that hands the request over to `engine`.
 * Errors go to `next(err)`; a client refused by a limit was answered 503 and is not
 * an error.
 */
export declare function sse(
  engine: Engine,
  options?: SseHandlerOptions,
): (req: Req, res: Res, next: (err?: unknown) => void) => void;

/** Resolves per-request options (exported for other Connect-style frameworks). */
export declare function resolveOptions(
  options: SseHandlerOptions,
  req: Req,
  res: Res,
): ConnectOptions | Promise<ConnectOptions>;
