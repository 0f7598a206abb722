// An HTTP proxy in front of moto that fails chosen S3 requests with a 500 before they reach moto:
// the state a network failure, an S3 outage or a crash at that point leaves behind.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type S3Fault = (req: http.IncomingMessage) => boolean;

export interface S3FaultProxy {
  url: string;
  /** Requests seen, as "METHOD /path?query". */
  seen: string[];
  fail(next: S3Fault | null): void;
  close(): Promise<void>;
}

export async function s3FaultProxy(target: string): Promise<S3FaultProxy> {
  let fault: S3Fault | null = null;
  const seen: string[] = [];
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (fault?.(req)) {
      req.resume();
      res.writeHead(500, { 'Content-Type': 'application/xml' });
      res.end('<Error><Code>InternalError</Code><Message>injected by the test</Message></Error>');
      return;
    }
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    fail(next) {
      fault = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const isIncompletePartKey = (req: http.IncomingMessage) => /\.part(\?|$)/.test(req.url ?? '');
export const isUploadPart = (req: http.IncomingMessage) => req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
/** CompleteMultipartUpload: POST /<bucket>/<key>?uploadId=… */
export const isCompleteMultipart = (req: http.IncomingMessage) => req.method === 'POST' && /[?&]uploadId=/.test(req.url ?? '');
