// The request the endpoint hands @tus/server (src/tus/request-context.ts): it carries the request
// context, and its body is a NodeBody that is also an honest Web stream of the request's bytes.
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { LOCAL_PRINCIPAL } from '../../src/auth/principal.js';
import { NodeBody } from '../../src/tus/body.js';
import { requestContextOf, TusRequest, type RequestContext } from '../../src/tus/request-context.js';

const context: RequestContext = { principal: LOCAL_PRINCIPAL, log: console, baseUrl: 'http://127.0.0.1' };

/** Sends one request with `body` to a server that answers with what `inspect` returns. */
async function serveOnce(method: string, body: Buffer, inspect: (req: IncomingMessage, res: ServerResponse) => Promise<unknown>): Promise<unknown> {
  let result: Promise<unknown> = Promise.resolve(undefined);
  const server = createServer((req, res) => {
    result = inspect(req, res);
    void result.finally(() => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      const sent = request({ port, method, headers: { 'Content-Length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      sent.on('error', reject);
      sent.end(body);
    });
    return await result;
  } finally {
    server.close();
  }
}

describe('TusRequest', () => {
  it('carries its context to requestContextOf; any other Request has none', async () => {
    const seen = await serveOnce('HEAD', Buffer.alloc(0), async (req, res) => {
      const tusRequest = new TusRequest({ req, res }, context);
      return { context: requestContextOf(tusRequest), body: tusRequest.body };
    });
    expect(seen).toEqual({ context, body: null });
    expect(() => requestContextOf(new Request('http://127.0.0.1/files'))).toThrow(/without a request context/);
  });

  it('has a NodeBody that reads nothing until read, and then streams the request bytes', async () => {
    const bytes = randomBytes(300_000);
    const seen = await serveOnce('PATCH', bytes, async (req, res) => {
      const tusRequest = new TusRequest({ req, res }, context);
      const body = tusRequest.body;
      const untouched = body instanceof NodeBody && body.req === req && body.request === tusRequest && req.readableFlowing === null;
      // A stream with a high-water mark above 0 would have pulled by now.
      await new Promise(setImmediate);
      const stillUntouched = req.readableFlowing === null && !req.readableEnded;
      const read = Buffer.from(await new Response(body).arrayBuffer());
      return { untouched, stillUntouched, same: read.equals(bytes) };
    });
    expect(seen).toEqual({ untouched: true, stillUntouched: true, same: true });
  });
});
