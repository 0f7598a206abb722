// Issue #23: a small file sent whole in its creation request is processed in the transaction that
// finishes it, so the first GET after the final response finds it final — no polling. Same rules
// as the job: wrong magic bytes are rejected with the job's reason, identical bytes de-duplicate,
// and the outbox announces upload.completed and file.ready once each. With a scanner configured
// the file waits for the scan as before.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFile, waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildPng, buildXsq } from '../support/fixture-builders.js';
import { ROOT, serverEnv, startServer, type TestServer } from '../support/server.js';
import { idOf, md5, sha256 } from '../support/tus.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

const fixture = (name: string) => readFile(path.join(ROOT, 'test/fixtures', name));

/** A creation-with-upload carrying the whole file; resolves with the upload id after the 201. */
async function sendWhole(server: TestServer, data: Buffer, filename: string): Promise<string> {
  const response = await fetch(`${server.url}/files`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Length': String(data.length),
      'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
      'Content-Type': 'application/offset+octet-stream',
    },
    body: Buffer.from(data),
  });
  expect(response.status).toBe(201);
  expect(response.headers.get('upload-offset')).toBe(String(data.length));
  return idOf(response.headers.get('location')!);
}

describe('small files finished inline, no scanner', () => {
  let db: TestDatabase;
  let receiver: Receiver;
  let server: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    receiver = await startReceiver();
    const extra = { WEBHOOK_URL: `${receiver.url}/hook`, WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`, WEBHOOK_ALLOW_PRIVATE: 'true' };
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra }));
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    await db?.drop();
  });

  async function eventsOf(id: string): Promise<string[]> {
    const rows = await db.sql<{ type: string }[]>`select type from webhook_events where upload_id = ${id} order by seq`;
    return rows.map((row) => row.type);
  }

  it.each([
    ['an FSEQ', 'fseq/v1.0_novh_nkaminski_testseq.fseq', 'show.fseq', 'fseq'],
    ['an MP3', 'audio/mm_notags.mp3', 'song.mp3', 'audio'],
  ])('%s is ready with its metadata on the first GET', async (_what, name, filename, kind) => {
    const data = await fixture(name);
    const id = await sendWhole(server, data, filename);
    const record = await getFile(server.url, id);
    expect(record).toMatchObject({ status: 'ready', kind, size: data.length, sha256: sha256(data), md5: md5(data), deduplicated: false });
    expect(record.metadata).not.toBeNull();
    expect(record.scan.status).toBe('skipped');
    expect(await eventsOf(id)).toEqual(['upload.created', 'upload.completed', 'file.ready']);
  });

  it('an XSQ is ready with its counts on the first GET', async () => {
    const { xml, expected } = buildXsq({ models: 2, timingTracks: 1, effectsPerLayer: 2 });
    const id = await sendWhole(server, Buffer.from(xml), 'show.xsq');
    const record = await getFile(server.url, id);
    expect(record).toMatchObject({ status: 'ready', kind: 'xsq' });
    expect(record.metadata).toMatchObject({ ...expected });
  });

  it('a wrong-type small file is rejected at once, with the reason the job gives', async () => {
    const id = await sendWhole(server, buildPng(), 'sneaky.fseq');
    const record = await getFile(server.url, id);
    expect(record).toMatchObject({ status: 'rejected', rejectionReason: 'the content is PNG data, not a fseq file', sha256: sha256(buildPng()) });
    expect(await eventsOf(id)).toEqual(['upload.created', 'upload.completed', 'file.rejected']);
  });

  it('the same bytes twice are de-duplicated inline', async () => {
    const data = await fixture('fseq/v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq');
    const first = await sendWhole(server, data, 'a.fseq');
    const second = await sendWhole(server, data, 'b.fseq');
    const [a, b] = [await getFile(server.url, first), await getFile(server.url, second)];
    expect(a).toMatchObject({ status: 'ready', deduplicated: false });
    expect(b).toMatchObject({ status: 'ready', deduplicated: true, sha256: a.sha256, metadata: a.metadata });
    const [blob] = await db.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(data)}`;
    expect(blob!.ref_count).toBe(2);
    expect(await eventsOf(second)).toEqual(['upload.created', 'upload.completed', 'file.ready']);
  });
});

describe('small files with a scanner configured', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    const extra = { CLAMAV_HOST: inject('clamdHost'), CLAMAV_PORT: String(inject('clamdPort')) };
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra }));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('go through the scan: ready only after a clean verdict', async () => {
    const data = await fixture('audio/mm_notags.mp3');
    const id = await sendWhole(server, data, 'song.mp3');
    const record = await waitForFinal(server.url, id);
    expect(record).toMatchObject({ status: 'ready', sha256: sha256(data) });
    expect(record.scan.status).toBe('clean');
    expect(record.metadata).not.toBeNull();
    // Ready only once the verdict was in: the scan step finalized it, not the finish.
    const [row] = await db.sql<{ waited: boolean }[]>`
      select u.ready_at >= b.scanned_at and b.scanned_at > u.completed_at as waited
      from uploads u join blobs b on b.sha256 = u.blob_sha256 where u.id = ${id}`;
    expect(row!.waited).toBe(true);
  });
});
