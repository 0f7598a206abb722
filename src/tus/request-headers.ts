// Request headers as @tus/server will read them (srvx reads rawHeaders, Node's own code `headers`).
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
