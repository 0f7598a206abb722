// Analytics checked against a known data set, /metrics moving with real uploads, the OpenAPI
// document valid and covering every API route, and a worker-only process serving its probes.
import { randomBytes } from 'node:crypto';
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal, type FileRecord } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildFseqV1, buildPng } from '../support/fixture-builders.js';
import { counter, scrape } from '../support/metrics.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';

describe('analytics, metrics and OpenAPI', () => {
  let db: TestDatabase;
  let server: TestServer;
  let admin: Record<string, string>;
  const owners: Record<string, Record<string, string>> = {};

  const send = async (data: Buffer, filename: string, who: string, filetype?: string): Promise<FileRecord> => {
    const headers = owners[who]!;
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, headers, ...(filetype ? { filetype } : {}) });
    return waitForFinal(server.url, id, { headers });
  };
  const get = async (path: string, headers = admin) => {
    const response = await fetch(`${server.url}${path}`, { headers });
    expect(response.status).toBe(200);
    return response.json() as Promise<Record<string, unknown>>;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv() }));
    admin = await bearer('root', { role: 'admin' });
    for (const who of ['ann', 'ben', 'cat']) owners[who] = await bearer(who);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('moves the Prometheus metrics with real uploads', async () => {
    const before = await scrape(server.url);
    const a = randomBytes(3000);
    const b = buildPng();
    await send(a, 'metrics.bin', 'ann');
    await send(b, 'metrics.fseq', 'ann'); // rejected: a PNG
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const after = await response.text();
    expect(counter(after, 'tus_uploads_created_total') - counter(before, 'tus_uploads_created_total')).toBe(2);
    expect(counter(after, 'tus_uploads_finished_total') - counter(before, 'tus_uploads_finished_total')).toBe(2);
    expect(counter(after, 'tus_bytes_received_total') - counter(before, 'tus_bytes_received_total')).toBe(a.length + b.length);
    expect(counter(after, 'tus_requests_total{method="POST"}') - counter(before, 'tus_requests_total{method="POST"}')).toBe(2);
    // Both small files are settled where they finish (the inline step), or by the job (its digest step).
    const settled = (text: string) =>
      counter(text, 'tusvault_processing_step_seconds_count{step="digest"}') + counter(text, 'tusvault_processing_step_seconds_count{step="inline"}');
    expect(settled(after) - settled(before)).toBe(2);
    expect(counter(after, 'tusvault_finish_to_final_seconds_count{status="ready"}')).toBeGreaterThanOrEqual(1);
    expect(counter(after, 'tusvault_finish_to_final_seconds_count{status="rejected"}')).toBeGreaterThanOrEqual(1);
    expect(counter(after, 'tusvault_uploads{status="ready"}')).toBeGreaterThanOrEqual(1);
    expect(after).toContain('tus_connections_open');
    expect(after).toContain('tusvault_queue_jobs{state="pending"}');
    expect(after).toContain('process_resident_memory_bytes');
  });

  it('computes upload, failure, uploader and duplicate analytics that match a known data set', async () => {
    await db.sql`delete from audit_log`;
    await new Promise((r) => setTimeout(r, 20));
    const start = new Date().toISOString();
    // ann: 2 ready (one fseq, one bin) + 1 rejected; ben: 1 ready duplicate of ann's bin + 1 rejected;
    // cat: 3 ready small files.
    const shared = randomBytes(5000);
    const fseq = buildFseqV1({ channels: 4, frames: 25, stepMs: 50 });
    await send(shared, 'shared.bin', 'ann');
    await send(fseq, 'show.fseq', 'ann');
    await send(buildPng(), 'fake.fseq', 'ann');
    const dup = await send(shared, 'copy.bin', 'ben');
    // Shared with ann's copy internally (the duplicates report below counts it), but ben is not
    // told that someone else has these bytes.
    expect(dup.deduplicated).toBe(false);
    await send(Buffer.from('<rss/>'), 'feed.xml', 'ben');
    for (let i = 0; i < 3; i++) await send(randomBytes(100 + i), `small-${i}.bin`, 'cat');
    const end = new Date(Date.now() + 1000).toISOString();
    const window = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;

    const uploads = await get(`/api/admin/analytics/uploads?${window}`);
    expect(uploads).toMatchObject({
      total: 8,
      succeeded: 6,
      failed: 2,
      inProgress: 0,
      successRate: 0.75,
      bytesStored: 5000 + fseq.length + 5000 + 100 + 101 + 102,
      averageSize: Math.round((5000 + fseq.length + 5000 + 100 + 101 + 102) / 6),
      byStatus: { ready: 6, rejected: 2 },
      scans: { clean: 0, infected: 0, failed: 0, skipped: 8, pending: 0 },
    });
    expect(uploads.byKind).toEqual(
      expect.arrayContaining([
        { kind: 'fseq', count: 2, bytes: fseq.length + buildPng().length },
        { kind: 'other', count: 5, bytes: 5000 + 5000 + 303 },
        { kind: 'xsq', count: 1, bytes: 6 },
      ]),
    );
    expect(uploads.byMimeType).toEqual(expect.arrayContaining([expect.objectContaining({ mimeType: 'application/x-fseq', count: 1 })]));

    const failures = await get(`/api/admin/analytics/failures?${window}`);
    expect(failures).toMatchObject({ total: 2, byStatus: { rejected: 2 } });
    expect((failures.reasons as Array<{ reason: string }>).map((r) => r.reason).sort()).toEqual([
      'not an xLights sequence: the root element is <rss>, expected <xsequence>',
      'the content is PNG data, not a fseq file',
    ]);

    const top = await get(`/api/admin/analytics/top-uploaders?${window}&limit=2`);
    expect(top.owners).toEqual([
      { ownerId: 'ann', uploads: 3, readyFiles: 2, bytes: 5000 + fseq.length },
      { ownerId: 'ben', uploads: 2, readyFiles: 1, bytes: 5000 },
    ]);

    const duplicates = await get('/api/admin/duplicates');
    expect(duplicates).toMatchObject({ groups: 1, duplicateReferences: 1, bytesSaved: 5000 });
    expect((duplicates.top as Array<{ filenames: string[] }>)[0]!.filenames.sort()).toEqual(['copy.bin', 'shared.bin']);

    const queue = await get('/api/admin/analytics/queue');
    expect(queue).toMatchObject({ running: 0, failed: 0, uploadsProcessing: 0 });

    const notAdmin = await fetch(`${server.url}/api/admin/analytics/uploads`, { headers: owners.ann });
    expect(notAdmin.status).toBe(403);
    const badWindow = await fetch(`${server.url}/api/admin/analytics/uploads?start=${encodeURIComponent(end)}&end=${encodeURIComponent(start)}`, {
      headers: admin,
    });
    expect(badWindow.status).toBe(400);
  });

  it('publishes a valid OpenAPI document with a schema for every API route', async () => {
    const response = await fetch(`${server.url}/docs/json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { paths: Record<string, Record<string, { responses?: object }>> };
    await SwaggerParser.validate(structuredClone(document) as never);
    const paths = Object.keys(document.paths);
    for (const path of [
      '/api/files',
      '/api/files/{id}',
      '/api/files/{id}/content',
      '/api/files/{id}/events',
      '/api/files/{id}/download-url',
      '/api/me/quota',
      '/api/admin/quotas/{ownerId}',
      '/api/admin/analytics/uploads',
      '/api/admin/analytics/queue',
      '/api/admin/analytics/failures',
      '/api/admin/analytics/top-uploaders',
      '/api/admin/duplicates',
      '/api/admin/uploads/cleanup',
    ]) {
      expect(paths).toContain(path);
      for (const operation of Object.values(document.paths[path]!)) expect(Object.keys(operation.responses ?? {})).not.toHaveLength(0);
    }
    const ui = await fetch(`${server.url}/docs`, { redirect: 'follow' });
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });

  it('runs a worker-only process that serves its probes and metrics but no uploads', async () => {
    const worker = await startServer({ ...server.env, ROLE: 'worker' });
    try {
      expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${worker.url}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${worker.url}/metrics`)).text()).toContain('tusvault_queue_jobs');
      expect((await fetch(`${worker.url}/files`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0' } })).status).toBe(404);
    } finally {
      await worker.stop();
    }
  });
});
