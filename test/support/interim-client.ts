// An HTTP/1.1 client for the IETF draft's interim responses: node:http reports each 1xx (the
// draft's 104s) as an 'information' event, which fetch does not expose.
import http, { type IncomingHttpHeaders } from 'node:http';

export interface Interim {
  status: number;
  headers: IncomingHttpHeaders;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  interim: Interim[];
}

/**
 * One request with node:http, which reports every 1xx as an 'information' event; the body goes in
 * 256 KiB writes that wait for the socket, as a client streaming a file does. With `stallAfter`,
 * only that many bytes are sent and the connection stays open (a network that stalls); `chunked`
 * sends no Content-Length (Transfer-Encoding: chunked). With `pauseForProgressAt`, sending pauses
 * at that many bytes until a 104 with Upload-Offset arrives (at most 30 s).
 */
export function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
  {
    onInterim,
    stallAfter,
    chunked = false,
    pauseForProgressAt,
  }: { onInterim?: (interim: Interim) => void; stallAfter?: number; chunked?: boolean; pauseForProgressAt?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const interim: Interim[] = [];
    const request = http.request(url, { method, headers: { ...(chunked ? {} : { 'Content-Length': String(body.length) }), ...headers } });
    let progressSeen: () => void = () => {};
    const progress = new Promise<void>((seen) => (progressSeen = seen));
    request.on('information', (info) => {
      const seen = { status: info.statusCode, headers: info.headers };
      interim.push(seen);
      if (seen.headers['upload-offset'] !== undefined) progressSeen();
      onInterim?.(seen);
    });
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8'), interim }));
      response.on('error', reject);
    });
    request.on('error', reject);
    const writable = () =>
      new Promise<void>((done) => {
        const go = () => {
          request.off('drain', go);
          request.off('close', go);
          done();
        };
        request.on('drain', go);
        request.on('close', go);
      });
    void (async () => {
      const end = Math.min(body.length, stallAfter ?? body.length);
      let paused = false;
      for (let at = 0; at < end; at += 256 << 10) {
        if (request.destroyed) return;
        if (pauseForProgressAt !== undefined && !paused && at >= pauseForProgressAt) {
          // A client that waits for the server's durable progress, so a test of it does not race
          // the store (a slow machine could otherwise take every part only after the last byte).
          paused = true;
          await Promise.race([progress, new Promise((later) => setTimeout(later, 30_000))]);
        }
        if (!request.write(body.subarray(at, Math.min(end, at + (256 << 10))))) await writable();
      }
      if (stallAfter === undefined) request.end();
    })();
  });
}
