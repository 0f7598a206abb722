// Live progress over Server-Sent Events, seen by a real HTTP client from the first byte to
// `ready` — with the bytes arriving at a different server process than the one streaming events
// (two instances on one database and one storage directory, as behind a load balancer).
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { readEvents, type SseEvent } from '../support/sse.js';
import { idOf, upload } from '../support/tus.js';

describe('live progress (SSE) across two server instances', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  let headers: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-events-'));
    const env = await serverEnv({ databaseUrl: db.url, storage: 'file', dataDir, extra: jwtEnv() });
    a = await startServer(env);
    b = await startServer({ ...env, ROLE: 'api' });
    headers = await bearer('watcher');
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await db?.drop();
  });

  it('streams snapshot, progress and every status change until ready, then ends', async () => {
    // Larger than a small file settled where it finishes: processed by the job (processing, then ready).
    const data = randomBytes(5 * 256 * 1024);
    // Create the upload on B (no bytes yet), watch it on A, send the bytes to B in five PATCHes.
    const create = await fetch(`${b.url}/files`, {
      method: 'POST',
      headers: {
        ...headers,
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(data.length),
        'Upload-Metadata': `filename ${Buffer.from('live.bin').toString('base64')}`,
      },
    });
    const location = create.headers.get('location')!;
    const id = idOf(location);

    const seen: SseEvent[] = [];
    const stream = readEvents(`${a.url}/api/files/${id}/events`, headers, (event) => seen.push(event));
    await new Promise((r) => setTimeout(r, 300));
    await upload(data, { endpoint: `${b.url}/files`, uploadUrl: location, filename: 'live.bin', chunkSize: 256 * 1024, headers });
    const result = await stream;

    expect(result.status).toBe(200);
    expect(result.contentType).toContain('text/event-stream');
    expect(result.ended).toBe(true);
    expect(seen[0]).toMatchObject({ event: 'snapshot', data: { id, status: 'uploading', offset: 0 } });
    const progress = seen.filter((e) => e.event === 'progress').map((e) => (e.data as { offset: number }).offset);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect([...progress].sort((x, y) => x - y)).toEqual(progress);
    expect(progress.at(-1)).toBe(data.length);
    const statuses = seen.filter((e) => e.event === 'status').map((e) => (e.data as { status: string }).status);
    expect(statuses).toEqual(['processing', 'ready']);
    expect(seen.at(-1)!.data).toMatchObject({ status: 'ready', size: data.length });
  });

  it('answers 404 for another owner and closes at once for a finished file', async () => {
    const id = await upload(randomBytes(10), { endpoint: `${a.url}/files`, filename: 'done.bin', headers });
    const other = await readEvents(`${a.url}/api/files/${id}/events`, await bearer('someone-else'), () => {});
    expect(other.status).toBe(404);
    // Wait for ready, then a new stream sends one snapshot and ends.
    let final: SseEvent[] = [];
    for (let i = 0; i < 100; i++) {
      final = [];
      await readEvents(`${a.url}/api/files/${id}/events`, headers, (e) => final.push(e));
      if ((final[0]?.data as { status?: string })?.status === 'ready') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(final).toHaveLength(1);
    expect(final[0]).toMatchObject({ event: 'snapshot', data: { status: 'ready' } });
  });

  it('streams all of an owner\'s files on /api/events', async () => {
    const controller = new AbortController();
    const seen: SseEvent[] = [];
    const stream = readEvents(`${a.url}/api/events`, headers, (event) => seen.push(event), controller.signal);
    await new Promise((r) => setTimeout(r, 200));
    const id = await upload(randomBytes(2048), { endpoint: `${b.url}/files`, filename: 'feed.bin', headers });
    for (let i = 0; i < 200 && !seen.some((e) => e.event === 'status' && (e.data as { id: string; status: string }).status === 'ready'); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    controller.abort();
    await stream;
    const statuses = seen.filter((e) => e.event === 'status' && (e.data as { id?: string }).id === id).map((e) => (e.data as { status: string }).status);
    // A small file is settled as it finishes: processing and ready commit together, announced once (ready).
    expect(statuses).toEqual(['uploading', 'ready']);
    expect(seen.filter((e) => e.event === 'status' && (e.data as { id?: string }).id === id).at(-1)!.data).toMatchObject({ id, status: 'ready', filename: 'feed.bin' });
  });
});
