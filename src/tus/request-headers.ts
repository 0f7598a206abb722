// Request headers as @tus/server will read them (srvx reads rawHeaders, Node's own code `headers`),
// and a step the endpoint wants taken at the moment a request's body is about to be stored.
import type { IncomingMessage } from 'node:http';

export function removeRequestHeader(req: IncomingMessage, name: string): void {
  delete req.headers[name];
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  }
}

export function setRequestHeader(req: IncomingMessage, name: string, value: string): void {
  removeRequestHeader(req, name);
  req.headers[name] = value;
  req.rawHeaders.push(name, value);
}

const beforeBody = new WeakMap<IncomingMessage, (uploadId: string) => void>();

/** `step` runs once the upload of `req` exists and before a byte of its body is stored. */
export function whenBodyStarts(req: IncomingMessage, step: ((uploadId: string) => void) | null): void {
  if (step) beforeBody.set(req, step);
  else beforeBody.delete(req);
}

/** Called by the body path (src/tus/body.ts) as it starts storing a body. */
export function bodyStarts(req: IncomingMessage | undefined, uploadId: string): void {
  if (!req) return;
  const step = beforeBody.get(req);
  beforeBody.delete(req);
  step?.(uploadId);
}
