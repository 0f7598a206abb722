// The physical limit: a plain Node `http` server that pipes each request body straight into a
// file, with just enough of the tus protocol (POST → Location, PATCH at an offset, HEAD) for the
// same clients to talk to it. No validation, no locking, no database, no metadata file.
//   env: PORT, DIR, FSYNC=1 (fsync each PATCH before answering, as our DurableFileStore does)
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';

const dir = process.env.DIR!;
const fsync = process.env.FSYNC === '1';
const uploads = new Map<string, { length: number | null; offset: number }>();

const headers = {
  'Tus-Resumable': '1.0.0',
  'Access-Control-Expose-Headers': 'Location, Upload-Offset, Upload-Length, Tus-Resumable',
};

async function receive(req: IncomingMessage, id: string, offset: number): Promise<number> {
  const out = createWriteStream(path.join(dir, id), { flags: 'r+', start: offset, flush: fsync });
  await pipeline(req, out);
  return offset + out.bytesWritten;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const id = (req.url ?? '/').split('/').filter(Boolean)[1];
  if (req.method === 'POST') {
    const newId = randomBytes(16).toString('hex');
    await (await open(path.join(dir, newId), 'w')).close();
    const length = req.headers['upload-length'] ? Number(req.headers['upload-length']) : null;
    const upload = { length, offset: 0 };
    uploads.set(newId, upload);
    if (req.headers['content-type'] === 'application/offset+octet-stream') upload.offset = await receive(req, newId, 0);
    else req.resume();
    res.writeHead(201, { ...headers, Location: `http://${req.headers.host}/files/${newId}`, 'Upload-Offset': String(upload.offset) });
    res.end();
    return;
  }
  const upload = id ? uploads.get(id) : undefined;
  if (!upload || !id) {
    req.resume();
    res.writeHead(404, headers).end();
    return;
  }
  if (req.method === 'PATCH') {
    upload.offset = await receive(req, id, Number(req.headers['upload-offset'] ?? 0));
    res.writeHead(204, { ...headers, 'Upload-Offset': String(upload.offset) }).end();
  } else if (req.method === 'HEAD') {
    res.writeHead(200, { ...headers, 'Upload-Offset': String(upload.offset), 'Upload-Length': String(upload.length ?? ''), 'Cache-Control': 'no-store' }).end();
  } else if (req.method === 'DELETE') {
    uploads.delete(id);
    res.writeHead(204, headers).end();
  } else {
    req.resume();
    res.writeHead(405, headers).end();
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (!res.headersSent) res.writeHead(500, headers);
    res.end(String(error));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
