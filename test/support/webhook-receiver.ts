// A real HTTP receiver on 127.0.0.1 for what the server POSTs to the application (webhooks, the
// pre-create hook), with the `standardwebhooks` package's verification of each request.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> & { id: string; status: string } } & Record<string, unknown>;
  answered: number;
}

/** How the receiver answers one request: a status (body "ok" for 200, 5000 bytes otherwise) or all of it. */
export type Answer = number | { status: number; body?: string; contentType?: string; delayMs?: number };

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A receiver; `answer` decides each answer (default 200). With `port`, it listens there. */
export async function startReceiver(answer: (request: Omit<Received, 'answered'>) => Answer = () => 200, options: { port?: number } = {}) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      const request = { path: req.url ?? '/', headers: req.headers, raw, body: JSON.parse(raw) as Received['body'] };
      const chosen = answer(request);
      const { status, body, contentType, delayMs } = typeof chosen === 'number' ? { status: chosen } : chosen;
      received.push({ ...request, answered: status });
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': contentType ?? 'text/plain' }).end(body ?? (status === 200 ? 'ok' : 'x'.repeat(5000)));
      };
      if (delayMs) setTimeout(send, delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    /** The requests about one upload (in arrival order), optionally on one path. */
    about: (id: string, path?: string) => received.filter((r) => r.body.data?.id === id && (path === undefined || r.path === path)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The request's payload when its Standard Webhooks signature verifies with `secret` (throws otherwise). */
export function verify(request: Pick<Received, 'raw' | 'headers'>, secret: string): unknown {
  return new Webhook(secret).verify(request.raw, {
    'webhook-id': String(request.headers['webhook-id']),
    'webhook-timestamp': String(request.headers['webhook-timestamp']),
    'webhook-signature': String(request.headers['webhook-signature']),
  });
}
