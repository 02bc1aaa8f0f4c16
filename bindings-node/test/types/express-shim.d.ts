// Express ships no types of its own (they are in @types/express, not needed here).
declare module 'express' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
  interface App {
    get(path: string, ...handlers: Handler[]): App;
  }
  function express(): App;
  export default express;
}
