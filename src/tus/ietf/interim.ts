// Informational (1xx) responses with headers, before the final response. Node 20's
// ServerResponse can send 100 (writeContinue), 102 (writeProcessing) and 103 (writeEarlyHints)
// but no other 1xx: a `104 Upload Resumption Supported` is written here the way writeEarlyHints
// writes its 103 — the raw status line and headers through the response's own raw writer
// (`_writeRaw`, which keeps the order with anything Node queued), before the final head is sent.
import type { ServerResponse } from 'node:http';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Writes `HTTP/1.1 <status> <reason>` with `headers` as an interim response. Returns false (and
 * writes nothing) when it cannot be sent: the final head is out, the connection is gone, or the
 * client speaks HTTP/1.0 (which has no 1xx responses).
 */
export function writeInterimResponse(res: ServerResponse, status: number, reason: string, headers: Record<string, string>): boolean {
  if (status < 100 || status > 199 || status === 101) throw new Error(`${status} is not an interim status`);
  const { req } = res;
  if (res.headersSent || res.writableEnded || res.destroyed || !res.socket || res.socket.destroyed) return false;
  if (req && (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1))) return false;
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) throw new Error(`invalid interim response header ${JSON.stringify(name)}`);
    head += `${name}: ${value}\r\n`;
  }
  head += '\r\n';
  const raw = (res as unknown as { _writeRaw?: (data: string, encoding: BufferEncoding) => boolean })._writeRaw;
  if (typeof raw === 'function') raw.call(res, head, 'latin1');
  else res.socket.write(head, 'latin1');
  return true;
}
