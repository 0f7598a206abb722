// Issue #23: a small file sent whole in its creation request is processed in the transaction that
// finishes it, so the first GET after the final response finds it final — no polling. Same rules
// as the job: wrong magic bytes are rejected with the job's reason, identical bytes de-duplicate,
// and the outbox announces upload.completed and file.ready once each. With a scanner configured
// the file waits for the scan as before.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFile, waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { counter, scrape } from '../support/metrics.js';
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

  it('many finishing at once are settled together, each as if alone', async () => {
    const transactions = async () => counter(await scrape(server.url), 'tusvault_processing_step_seconds_count{step="inline"}');
    const before = await transactions();
    const [owner0] = await db.sql<{ used_bytes: number; file_count: number }[]>`select used_bytes::float8, file_count::int from owners`;
    const twin = randomBytes(30_000);
    const distinct = Array.from({ length: 24 }, () => randomBytes(4096 + Math.floor(Math.random() * 60_000)));
    const files = [
      ...distinct.map((data, i) => ({ data, filename: `part-${i}.bin`, expect: 'ready' })),
      // The same bytes several times at once: one blob, one original, the rest duplicates.
      ...Array.from({ length: 5 }, (_, i) => ({ data: twin, filename: `twin-${i}.bin`, expect: 'ready' })),
      ...Array.from({ length: 3 }, (_, i) => ({ data: buildPng(), filename: `sneaky-${i}.fseq`, expect: 'rejected' })),
    ];
    const ids = await Promise.all(files.map(async (file) => ({ ...file, id: await sendWhole(server, file.data, file.filename) })));
    const records = await Promise.all(ids.map(async (file) => ({ ...file, record: await getFile(server.url, file.id) })));
    for (const { record, data, expect: status } of records) {
      expect(record).toMatchObject({ status, sha256: sha256(data), md5: md5(data) });
    }
    const twins = records.filter((file) => file.data === twin);
    expect(twins.filter((file) => !file.record.deduplicated)).toHaveLength(1);
    const [blob] = await db.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(twin)}`;
    expect(blob!.ref_count).toBe(5);
    // One stored object for the five: the duplicates' own copies are gone.
    const [objects] = await db.sql<{ n: number }[]>`select count(*)::int as n from uploads where id in ${db.sql(twins.map((file) => file.id))} and storage_key is not null`;
    expect(objects!.n).toBe(0);
    for (const { id, expect: status } of records) {
      expect(await eventsOf(id)).toEqual(['upload.created', 'upload.completed', status === 'ready' ? 'file.ready' : 'file.rejected']);
    }
    const ready = records.filter((file) => file.expect === 'ready');
    const [owner1] = await db.sql<{ used_bytes: number; file_count: number; reserved_bytes: number }[]>`select used_bytes::float8, file_count::int, reserved_bytes::float8 from owners`;
    expect(owner1!.file_count - owner0!.file_count).toBe(ready.length);
    expect(owner1!.used_bytes - owner0!.used_bytes).toBe(ready.reduce((sum, file) => sum + file.data.length, 0));
    expect(owner1!.reserved_bytes).toBe(0);
    // Together: fewer transactions than files (a retried batch would count its retries too).
    expect(await transactions() - before).toBeLessThan(files.length);
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

describe('small files finished together, when the database refuses one', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file' }));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('the others still settle, the refused one follows by its own, each effect once', async () => {
    const files = Array.from({ length: 16 }, (_, i) => ({ data: randomBytes(20_000 + i), filename: `f-${i}.bin` }));
    const victim = sha256(files[7]!.data);
    // The first blob made of the victim's bytes fails its statement: a sequence is not rolled back
    // with it, so exactly one attempt fails, whichever path (batch, alone, job) makes it.
    await db.sql.unsafe(`
      create sequence injected_failures;
      create function fail_once() returns trigger language plpgsql as $$
      begin
        if new.sha256 = '${victim}' and nextval('injected_failures') = 1 then raise exception 'injected failure'; end if;
        return new;
      end $$;
      create trigger fail_once before insert on blobs for each row execute function fail_once();`);
    const ids = await Promise.all(files.map((file) => sendWhole(server, file.data, file.filename)));
    const records = await Promise.all(ids.map((id) => waitForFinal(server.url, id)));
    records.forEach((record, i) => expect(record).toMatchObject({ status: 'ready', sha256: sha256(files[i]!.data) }));
    const [injected] = await db.sql<{ n: number }[]>`select last_value::int as n from injected_failures`;
    expect(injected!.n).toBeGreaterThanOrEqual(1);
    // Nothing of a rolled-back attempt remains: one completion and one ready entry per file, the
    // quota counts each file once and holds nothing back.
    const audit = await db.sql<{ action: string; n: number }[]>`
      select action, count(*)::int as n from audit_log where upload_id in ${db.sql(ids)} group by action order by action`;
    expect(Object.fromEntries(audit.map((row) => [row.action, row.n]))).toMatchObject({ UPLOAD_COMPLETED: 16, UPLOAD_READY: 16 });
    const [owner] = await db.sql<{ file_count: number; used_bytes: number; reserved_bytes: number }[]>`
      select file_count::int, used_bytes::float8, reserved_bytes::float8 from owners`;
    expect(owner).toEqual({ file_count: 16, used_bytes: files.reduce((sum, file) => sum + file.data.length, 0), reserved_bytes: 0 });
  });
});
