// Graceful shutdown: SIGTERM while a PATCH is streaming. The server stops reading that body,
// keeps what it received, answers with the offset it saved, and exits 0; after a restart the
// upload resumes from exactly that offset.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import { sha256 } from '../support/tus.js';

describe('graceful shutdown', () => {
  let db: TestDatabase;
  let server: ChildServer | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  it('lets an in-flight PATCH save what it received, then exits cleanly', async () => {
    const env = await serverEnv({ databaseUrl: db.url, storage: 'file' });
    server = await spawnServer(env);
    const data = randomBytes(8 * 1024 * 1024);
    const create = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(data.length),
        'Upload-Metadata': `filename ${Buffer.from('slow.bin').toString('base64')}`,
      },
    });
    const location = create.headers.get('location')!;

    // A slow client: 64 KiB every 50 ms (the server gives a lock holder 3 s to wrap up).
    const sent = { bytes: 0 };
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request(location, {
        method: 'PATCH',
        headers: {
          'Tus-Resumable': '1.0.0',
          'Upload-Offset': '0',
          'Content-Type': 'application/offset+octet-stream',
          'Content-Length': String(data.length),
        },
      });
      request.on('error', reject);
      const timer = setInterval(() => {
        if (sent.bytes >= data.length || request.destroyed) {
          clearInterval(timer);
          return;
        }
        const chunk = data.subarray(sent.bytes, sent.bytes + 64 * 1024);
        sent.bytes += chunk.length;
        request.write(chunk);
      }, 50);
      request.on('response', (res) => {
        clearInterval(timer);
        resolve(res);
      });
    });

    await new Promise((r) => setTimeout(r, 600));
    const exit = server.kill('SIGTERM');
    const answer = await response;
    expect(answer.statusCode).toBe(204);
    const savedOffset = Number(answer.headers['upload-offset']);
    expect(savedOffset).toBeGreaterThan(0);
    expect(savedOffset).toBeLessThan(data.length);
    expect(await exit).toBe(0);

    server = await spawnServer(env);
    const head = await fetch(location.replace(/:\d+\//, `:${server.port}/`), {
      method: 'HEAD',
      headers: { 'Tus-Resumable': '1.0.0' },
    });
    expect(Number(head.headers.get('upload-offset'))).toBe(savedOffset);

    const rest = await fetch(location.replace(/:\d+\//, `:${server.port}/`), {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(savedOffset), 'Content-Type': 'application/offset+octet-stream' },
      body: data.subarray(savedOffset),
    });
    expect(rest.status).toBe(204);
    const record = await waitForFinal(server.url, location.split('/').pop()!);
    expect(record.status).toBe('ready');
    expect(record.sha256).toBe(sha256(data));
  });
});
