// @tus/server turns an error thrown in a handler into a response through onResponseError, which
// can set the status and body but not headers. The headers a client needs to act on an error
// (Retry-After on 423/429/503, Connection: close when the body was left unread) are put on the
// response's headers here, as the handler fails.
import { ERRORS } from '@tus/utils';
import type { Server } from '@tus/server';
import { AppError } from '../errors.js';

type Send = (req: Request, context: unknown, headers?: Headers) => Promise<Response>;

/** Seconds to wait after ERR_LOCK_TIMEOUT (another request held the upload's lock throughout). */
const LOCK_RETRY_AFTER_SECONDS = '2';

export function errorHeaders(error: unknown): Record<string, string> {
  if (error instanceof AppError) return error.headers;
  if (error === ERRORS.ERR_LOCK_TIMEOUT) return { 'Retry-After': LOCK_RETRY_AFTER_SECONDS };
  return {};
}

/** Makes every tus handler of `server` carry the headers of the error it fails with. */
export function useErrorHeaders(server: Server): void {
  for (const method of ['HEAD', 'PATCH', 'POST', 'DELETE'] as const) {
    const handler = server.handlers[method] as unknown as { send: Send };
    const send = handler.send.bind(handler);
    handler.send = async (req, context, headers = new Headers()) => {
      try {
        return await send(req, context, headers);
      } catch (error) {
        for (const [name, value] of Object.entries(errorHeaders(error))) headers.set(name, value);
        throw error;
      }
    };
  }
}
