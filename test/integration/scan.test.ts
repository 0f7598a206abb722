// Virus scanning with a real clamd (Debian clamav-daemon, signatures generated at test time: see
// test/support/clamd.ts), for both stores: clean audio becomes ready; EICAR and a clamav-testfiles
// archive are infected, quarantined, never served and audited; the same infected bytes uploaded
// again are infected at once without a new scan; a file over clamd's StreamMaxLength gets scan
// status `error` (ready, or failed under SCAN_REQUIRED); clamd down makes the job retry while the
// file stays processing, and the file completes once clamd is back or fails after the last attempt.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { scanResults } from '../../src/metrics.js';
import { createStorage } from '../../src/storage/index.js';
import type { ObjectStorage } from '../../src/storage/types.js';
import { getFile, waitForFinal } from '../support/api.js';
import { CLAMAV_TESTFILES, eicar, SIGNATURES, startClamd, type Clamd } from '../support/clamd.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { freePort, waitFor } from '../support/ports.js';
import { ROOT, serverEnv, startServer, type StorageKind, type TestServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

const MiB = 1024 * 1024;
const AUDIO = path.join(ROOT, 'test/fixtures/audio/mm_id3v2.3.mp3');

/** Scans sent to clamd so far by the servers in this test file (they run in this process). */
async function scansSoFar(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { labels, value } of (await scanResults.get()).values) counts[String(labels.result)] = value;
  return counts;
}
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Text around the EICAR string, unique per call so no two tests share a blob. */
function eicarFile(): Buffer {
  return Buffer.concat([Buffer.from(`notes ${randomBytes(8).toString('hex')}\n`), eicar(), Buffer.from('\nend\n')]);
}

interface Instance {
  server: TestServer;
  db: TestDatabase;
  storage: ObjectStorage;
  endpoint: string;
}

// clamd instances owned by this file: one with a small stream limit, one the outage test stops.
let smallClamd: Clamd;
let flakyClamd: Clamd;
beforeAll(async () => {
  [smallClamd, flakyClamd] = await Promise.all([startClamd({ streamMaxLength: '1M' }), startClamd()]);
});
afterAll(async () => {
  await Promise.allSettled([smallClamd?.destroy(), flakyClamd?.destroy()]);
});

describe.each<StorageKind>(['file', 's3'])('virus scanning with %s storage', (storageKind) => {
  const instances: Instance[] = [];
  // Each server has its own database, so its worker only runs its own jobs.
  async function launch(extra: Record<string, string>): Promise<Instance> {
    const db = await createTestDatabase();
    const env = await serverEnv({ databaseUrl: db.url, storage: storageKind, extra });
    const server = await startServer(env);
    const instance = { server, db, storage: await createStorage(loadConfig(env)), endpoint: `${server.url}/files` };
    instances.push(instance);
    return instance;
  }

  let main: Instance; // the shared clamd over TCP
  let small: Instance; // clamd with StreamMaxLength 1M; the server learns the limit from clamd's refusal
  let smallRequired: Instance; // the same clamd over its Unix socket, the limit configured, SCAN_REQUIRED=true
  let flaky: Instance; // a clamd the test stops and starts
  let dead: Instance; // nothing listens at CLAMAV_PORT, two attempts per job

  beforeAll(async () => {
    const deadPort = await freePort();
    [main, small, smallRequired, flaky, dead] = await Promise.all([
      launch({ CLAMAV_HOST: inject('clamdHost'), CLAMAV_PORT: String(inject('clamdPort')) }),
      launch({ CLAMAV_HOST: smallClamd.host, CLAMAV_PORT: String(smallClamd.port) }),
      launch({ CLAMAV_SOCKET: smallClamd.socket, CLAMAV_STREAM_MAX_LENGTH: '1MiB', SCAN_REQUIRED: 'true' }),
      launch({ CLAMAV_HOST: flakyClamd.host, CLAMAV_PORT: String(flakyClamd.port), CLAMAV_TIMEOUT: '5s' }),
      launch({ CLAMAV_HOST: '127.0.0.1', CLAMAV_PORT: String(deadPort), JOB_MAX_ATTEMPTS: '2', CLAMAV_TIMEOUT: '5s' }),
    ]);
  });
  afterAll(async () => {
    await Promise.allSettled(instances.map(async ({ server, db }) => {
      await server.stop();
      await db.drop();
    }));
  });

  async function blobOf(instance: Instance, sha: string) {
    const [blob] = await instance.db.sql<
      { storage_key: string; scan_status: string; scan_error: string | null; quarantined_at: Date | null; scanned_at: Date | null }[]
    >`select storage_key, scan_status, scan_error, quarantined_at, scanned_at from blobs where sha256 = ${sha}`;
    return blob;
  }

  async function scanJob(instance: Instance, sha: string) {
    const [job] = await instance.db.sql<{ attempts: number; last_error: string | null; locked_at: Date | null }[]>`
      select attempts, last_error, locked_at from graphile_worker.jobs where key = ${`scan:${sha}`}`;
    return job;
  }

  async function expectInfected(instance: Instance, id: string, data: Buffer, filename: string, signature: string) {
    const record = await waitForFinal(instance.server.url, id);
    expect(record).toMatchObject({
      id,
      status: 'infected',
      filename,
      sha256: sha256(data),
      readyAt: null,
      scan: { status: 'infected', signature },
    });
    expect(record.scan.scannedAt).toBeTruthy();
    expect(record.rejectionReason).toContain(signature);

    // Quarantined: the blob's bytes moved to quarantine/<key>, when is recorded (the lifecycle
    // job purges them after the retention); nothing is left at the original key.
    const blob = await blobOf(instance, sha256(data));
    expect(blob?.storage_key).toMatch(/^quarantine\/[0-9a-f]{32}$/);
    expect(blob?.quarantined_at).toBeInstanceOf(Date);
    expect(await instance.storage.size(blob!.storage_key)).toBe(data.length);
    expect(await instance.storage.size(blob!.storage_key.slice('quarantine/'.length))).toBeNull();

    // Never served: the content route refuses anything but a ready file.
    const content = await fetch(`${instance.server.url}/api/files/${id}/content`);
    const body = Buffer.from(await content.arrayBuffer());
    expect(content.status).toBe(409);
    expect(JSON.parse(body.toString())).toMatchObject({ error: { code: 'FILE_NOT_READY', status: 'infected' } });
    expect(body.includes(eicar())).toBe(false);

    // Audited: who (owner), what (file, content hash) and the signature.
    const entries = await instance.db.sql<{ owner_id: string; details: Record<string, unknown> }[]>`
      select owner_id, details from audit_log where upload_id = ${id} and action = 'SECURITY_ALERT'`;
    expect(entries).toHaveLength(1);
    expect(entries[0]!.owner_id).toBe(record.ownerId);
    expect(entries[0]!.details).toMatchObject({ filename, sha256: sha256(data), signature });
    return record;
  }

  it('scans a clean audio file clean and makes it ready', async () => {
    const data = await readFile(AUDIO);
    const before = await scansSoFar();
    const id = await upload(data, { endpoint: main.endpoint, filename: 'song.mp3', filetype: 'audio/mpeg' });
    const record = await waitForFinal(main.server.url, id);
    expect(record).toMatchObject({ status: 'ready', kind: 'audio', scan: { status: 'clean', signature: null } });
    expect(record.scan.scannedAt).toBeTruthy();
    expect(record.metadata).toMatchObject({ sampleRate: 44100 });
    expect((await scansSoFar()).clean).toBe((before.clean ?? 0) + 1);
    // Scan and metadata extraction ran as two jobs; the final status was decided once.
    const finals = await main.db.sql<{ action: string }[]>`
      select action from audit_log where upload_id = ${id}
        and action in ('UPLOAD_READY', 'UPLOAD_REJECTED', 'SECURITY_ALERT', 'UPLOAD_FAILED')`;
    expect(finals.map((f) => f.action)).toEqual(['UPLOAD_READY']);
  });

  it('finds EICAR in a file: infected, quarantined, never downloadable, audited and counted', async () => {
    const data = eicarFile();
    const before = await scansSoFar();
    const id = await upload(data, { endpoint: main.endpoint, filename: 'notes.bin' });
    const record = await expectInfected(main, id, data, 'notes.bin', SIGNATURES.eicar);
    expect(record.kind).toBe('other');
    expect((await scansSoFar()).infected).toBe((before.infected ?? 0) + 1);
  });

  it.each(['clam.zip', 'clam.7z'])('finds the test virus inside %s from clamav-testfiles', async (name) => {
    const data = await readFile(path.join(CLAMAV_TESTFILES, name));
    const id = await upload(data, { endpoint: main.endpoint, filename: name });
    await expectInfected(main, id, data, name, SIGNATURES.clamTestFile);
  });

  it.each(['error', 'skipped'])('scans a duplicate again when the blob has no verdict (%s), and not when it has one', async (missing) => {
    const data = Buffer.from(`verdict ${missing} ${randomBytes(8).toString('hex')}\n`);
    const first = await upload(data, { endpoint: main.endpoint, filename: 'first.txt' });
    expect(await waitForFinal(main.server.url, first)).toMatchObject({ status: 'ready', scan: { status: 'clean' } });
    // As if scanned while clamd was down (error) or before a scanner was configured (skipped).
    await main.db.sql`update blobs set scan_status = ${missing}, scan_error = ${missing === 'error' ? 'clamd was down' : null} where sha256 = ${sha256(data)}`;

    const before = total(await scansSoFar());
    const second = await upload(data, { endpoint: main.endpoint, filename: 'second.txt' });
    expect(await waitForFinal(main.server.url, second)).toMatchObject({ status: 'ready', deduplicated: true, scan: { status: 'clean' } });
    expect(total(await scansSoFar())).toBe(before + 1);
    expect(await blobOf(main, sha256(data))).toMatchObject({ scan_status: 'clean', scan_error: null });

    // Now it has a verdict: a third copy reuses it.
    const third = await upload(data, { endpoint: main.endpoint, filename: 'third.txt' });
    expect(await waitForFinal(main.server.url, third)).toMatchObject({ status: 'ready', deduplicated: true, scan: { status: 'clean' } });
    expect(total(await scansSoFar())).toBe(before + 1);
  });

  it('marks the same infected bytes uploaded again infected at once, without a new scan', async () => {
    const data = eicarFile();
    const first = await upload(data, { endpoint: main.endpoint, filename: 'first.bin' });
    const firstRecord = await expectInfected(main, first, data, 'first.bin', SIGNATURES.eicar);
    const scansBefore = await scansSoFar();

    const second = await upload(data, { endpoint: main.endpoint, filename: 'again.bin' });
    const record = await expectInfected(main, second, data, 'again.bin', SIGNATURES.eicar);
    expect(record.deduplicated).toBe(true);
    // The verdict is the first scan's: same time, and clamd was not asked again (no scan of any
    // result was counted meanwhile; a rescan would have had to finish before the final status).
    expect(record.scan.scannedAt).toBe(firstRecord.scan.scannedAt);
    expect(await scansSoFar()).toEqual(scansBefore);
    // The second copy of the bytes is gone; only the quarantined one remains.
    expect(await main.storage.size(second)).toBeNull();
  });

  it('purges quarantined bytes after QUARANTINE_RETENTION with the lifecycle sweep', async () => {
    const data = Buffer.concat([eicarFile(), Buffer.from(`\npurge-me ${storageKind} ${Date.now()}\n`)]);
    const id = await upload(data, { endpoint: main.endpoint, filename: 'purge.bin' });
    await expectInfected(main, id, data, 'purge.bin', SIGNATURES.eicar);
    const blob = await blobOf(main, sha256(data));
    const cleanup = (dryRun: boolean) =>
      fetch(`${main.server.url}/api/admin/uploads/cleanup`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ dryRun }),
      }).then((r) => r.json() as Promise<{ quarantined: { ids: string[] } }>);
    // Inside the retention: kept.
    expect((await cleanup(false)).quarantined.ids).not.toContain(id);
    expect(await main.storage.size(blob!.storage_key)).toBe(data.length);
    // Thirty-one days later: purged, with the quarantined bytes.
    await main.db.sql`update uploads set finalized_at = now() - interval '31 days' where id = ${id}`;
    expect((await cleanup(false)).quarantined.ids).toEqual([id]);
    expect(await main.storage.size(blob!.storage_key)).toBeNull();
    expect(await blobOf(main, sha256(data))).toBeUndefined();
    expect((await fetch(`${main.server.url}/api/files/${id}`)).status).toBe(404);
    const purged = await main.db.sql`select 1 from audit_log where upload_id = ${id} and action = 'FILE_PURGED'`;
    expect(purged).toHaveLength(1);
  });

  it("gives a file over clamd's StreamMaxLength scan status error and still makes it ready", async () => {
    const data = randomBytes(Math.round(1.5 * MiB));
    const id = await upload(data, { endpoint: small.endpoint, filename: 'large.bin' });
    const record = await waitForFinal(small.server.url, id);
    expect(record).toMatchObject({ status: 'ready', scan: { status: 'error', signature: null } });
    const blob = await blobOf(small, sha256(data));
    expect(blob?.scan_error).toMatch(/larger than the virus scanner accepts.*INSTREAM size limit exceeded.*StreamMaxLength/);
  });

  it('fails a file over the stream limit when SCAN_REQUIRED=true (clamd over its Unix socket)', async () => {
    const clean = Buffer.from(`a small clean file ${randomBytes(8).toString('hex')}\n`);
    const cleanId = await upload(clean, { endpoint: smallRequired.endpoint, filename: 'small.txt' });
    expect(await waitForFinal(smallRequired.server.url, cleanId)).toMatchObject({ status: 'ready', scan: { status: 'clean' } });

    const data = randomBytes(Math.round(1.5 * MiB));
    const id = await upload(data, { endpoint: smallRequired.endpoint, filename: 'large.bin' });
    const record = await waitForFinal(smallRequired.server.url, id);
    expect(record).toMatchObject({ status: 'failed', readyAt: null, scan: { status: 'error' } });
    expect(record.failureReason).toMatch(/clean virus scan is required.*\(StreamMaxLength is 1\.0 MiB\)/);
  });

  it('retries while clamd is down, keeping the file processing, and completes once clamd is back', async () => {
    await flakyClamd.stop();
    try {
      const data = await readFile(AUDIO);
      // Unique bytes: an ID3v2 tag's padding is free to change.
      const unique = Buffer.concat([data, randomBytes(16)]);
      const id = await upload(unique, { endpoint: flaky.endpoint, filename: 'down.mp3' });
      const sha = sha256(unique);
      // Two attempts fail (one retry after the backoff), and the file stays processing meanwhile.
      const job = await waitFor(
        async () => {
          const j = await scanJob(flaky, sha);
          return j && j.attempts >= 2 && j.last_error && j.locked_at === null ? j : null;
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'two failed scan attempts' },
      );
      expect(job.last_error).toMatch(/clamd.*ECONNREFUSED/);
      expect((await getFile(flaky.server.url, id)).status).toBe('processing');
      expect((await getFile(flaky.server.url, id)).scan.status).toBe('pending');

      await flakyClamd.start();
      const record = await waitForFinal(flaky.server.url, id, { timeoutMs: 30_000 });
      expect(record).toMatchObject({ status: 'ready', scan: { status: 'clean', signature: null } });
      // graphile-worker deletes the job just after the task's own transaction commits the verdict,
      // so the row may outlive the record's 'ready' by a moment: wait for it, don't race it.
      await waitFor(async () => ((await scanJob(flaky, sha)) === undefined ? true : null), {
        timeoutMs: 5_000,
        intervalMs: 50,
        what: 'the completed scan job to be removed',
      });
    } finally {
      if (!flakyClamd.running) await flakyClamd.start();
    }
  }, 60_000);

  it('fails the file with the reason after the last attempt when clamd stays down', async () => {
    const data = Buffer.from(`never scanned ${randomBytes(8).toString('hex')}\n`);
    const started = Date.now();
    const id = await upload(data, { endpoint: dead.endpoint, filename: 'stuck.txt' });
    const record = await waitForFinal(dead.server.url, id, { timeoutMs: 30_000 });
    expect(record).toMatchObject({ status: 'failed', readyAt: null, scan: { status: 'error', signature: null } });
    expect(record.failureReason).toMatch(/^virus scan failed after 2 attempts: .*ECONNREFUSED/);
    // The second attempt waited for graphile-worker's backoff (e^1 s) after the first.
    expect(Date.now() - started).toBeGreaterThan(2_000);
    const blob = await blobOf(dead, sha256(data));
    expect(blob?.scan_error).toMatch(/ECONNREFUSED/);
  });
});
