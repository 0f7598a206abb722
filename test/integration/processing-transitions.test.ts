// The processing transitions of src/db/processing.ts and the process_upload task, against a real
// PostgreSQL and real files: linking an upload to a blob with nothing left to wait for makes it
// ready in the same statement (quota and audit once); with a step pending it waits, and the
// step's finalizer makes it ready; a duplicate of bytes with another outcome is finalized by the
// caller; duplicates racing the blob's last step all end ready exactly once; and the task works
// from its job's facts on a first attempt, falling back to the record when they are stale.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Job, JobHelpers } from 'graphile-worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { connect, type Database } from '../../src/db/client.js';
import { jobKey, type JobPayload } from '../../src/db/jobs.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { finalizeBlob, linkBlob, saveScan, type ContentFacts, type StepOptions } from '../../src/db/processing.js';
import { insertUploadRecords, markUploadsFinished } from '../../src/db/uploads.js';
import { createLogger } from '../../src/logger.js';
import { createFileStorage } from '../../src/storage/file.js';
import { processUpload } from '../../tasks/process-upload.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const NO_LIMITS = { maxBytes: null, maxFiles: null, maxFileSize: null, monthlyBytes: null };
const NO_SCANNER: StepOptions = { scanner: false, scanRequired: false, maxAttempts: 3 };
const SCANNER: StepOptions = { scanner: true, scanRequired: false, maxAttempts: 3 };
const SIZE = 1000;
const newId = () => randomBytes(16).toString('hex');
const newSha = () => randomBytes(32).toString('hex');
const facts = (sha256: string, metadata: ContentFacts['metadata'] = { metadata: null, validationError: null, metadataError: null }): ContentFacts => ({
  sha256,
  md5: sha256.slice(0, 32),
  size: SIZE,
  kind: 'other',
  format: null,
  mimeType: 'application/octet-stream',
  metadata,
});

describe('processing transitions', () => {
  let testDb: TestDatabase;
  let database: Database;
  let dir: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    await migrateDatabase(testDb.sql, testDb.url, createLogger('warn'));
    database = connect(testDb.url, { max: 8 });
    dir = await mkdtemp(path.join(tmpdir(), 'tusvault-transitions-'));
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** `count` uploads of `ownerId`, finished (status `processing`, each with its job). */
  async function finishedUploads(ownerId: string, count: number): Promise<string[]> {
    await testDb.sql`insert into owners (id) values (${ownerId}) on conflict do nothing`;
    const ids = Array.from({ length: count }, newId);
    const inputs = ids.map((id) => ({
      id, ownerId, filename: `${id}.bin`, mimeType: null, kind: 'other' as const, size: SIZE, tusMetadata: {}, expiresAt: null,
    }));
    expect(await insertUploadRecords(database.db, inputs, NO_LIMITS)).toEqual(ids.map(() => 'created'));
    expect(await markUploadsFinished(database.db, ids.map((id) => ({ id, size: SIZE })), { maxAttempts: 3 })).toEqual(ids.map(() => true));
    return ids;
  }

  async function state(ownerId: string) {
    const [owner] = await testDb.sql<{ reserved_bytes: number; reserved_files: number; used_bytes: number; file_count: number }[]>`
      select reserved_bytes::int, reserved_files, used_bytes::int, file_count from owners where id = ${ownerId}`;
    const uploads = await testDb.sql<{ id: string; status: string; quota_state: string; ready_at: Date | null; storage_key: string | null }[]>`
      select id, status, quota_state, ready_at, storage_key from uploads where owner_id = ${ownerId} order by id`;
    const [audit] = await testDb.sql<{ ready: number; rejected: number }[]>`
      select count(*) filter (where action = 'UPLOAD_READY')::int as ready, count(*) filter (where action = 'UPLOAD_REJECTED')::int as rejected
      from audit_log where owner_id = ${ownerId}`;
    return { owner, uploads, audit };
  }

  async function blobJobs(sha256: string): Promise<string[]> {
    const rows = await testDb.sql<{ task: string }[]>`
      select task_identifier as task from graphile_worker.jobs
      where key in ${testDb.sql([jobKey('extract_metadata', { sha256 }), jobKey('scan_blob', { sha256 })])} order by task_identifier`;
    return rows.map((row) => row.task);
  }

  it('makes an upload ready in the linking statement when its new blob has nothing pending', async () => {
    const [id] = await finishedUploads('t-ready', 1);
    const sha = newSha();
    const link = await linkBlob(database.db, id!, facts(sha), NO_SCANNER);
    expect(link).toMatchObject({ linked: true, deduplicated: false, stepsPending: false, ready: { id, ownerId: 't-ready', status: 'ready' } });
    expect(link.ready?.completedAt).toBeInstanceOf(Date);
    const after = await state('t-ready');
    expect(after.uploads).toEqual([{ id, status: 'ready', quota_state: 'committed', ready_at: expect.any(Date), storage_key: null }]);
    expect(after.owner).toEqual({ reserved_bytes: 0, reserved_files: 0, used_bytes: SIZE, file_count: 1 });
    expect(after.audit).toEqual({ ready: 1, rejected: 0 });
    expect(await blobJobs(sha)).toEqual([]);

    // The job again (a retry after this commit): nothing changes.
    expect(await linkBlob(database.db, id!, facts(sha), NO_SCANNER)).toEqual({ linked: false, deduplicated: false, ready: null, stepsPending: false });
    expect(await finalizeBlob(database.db, sha, NO_SCANNER)).toEqual([]);
    expect(await state('t-ready')).toEqual(after);
  });

  it('leaves an upload processing while a step is pending; the step’s finalizer makes it and its duplicates ready', async () => {
    const [first, duplicate] = await finishedUploads('t-pending', 2);
    const sha = newSha();
    expect(await linkBlob(database.db, first!, facts(sha), SCANNER)).toEqual({ linked: true, deduplicated: false, ready: null, stepsPending: true });
    expect(await blobJobs(sha)).toEqual(['scan_blob']);
    expect(await linkBlob(database.db, duplicate!, facts(sha), SCANNER)).toEqual({ linked: true, deduplicated: true, ready: null, stepsPending: true });
    let now = await state('t-pending');
    expect(now.uploads.map((u) => u.status)).toEqual(['processing', 'processing']);
    expect(now.owner).toEqual({ reserved_bytes: 2 * SIZE, reserved_files: 2, used_bytes: 0, file_count: 0 });

    await saveScan(database.db, sha, { status: 'clean', signature: null });
    expect((await finalizeBlob(database.db, sha, SCANNER)).map((u) => u.status)).toEqual(['ready', 'ready']);
    now = await state('t-pending');
    expect(now.uploads.map((u) => [u.status, u.quota_state])).toEqual([['ready', 'committed'], ['ready', 'committed']]);
    expect(now.owner).toEqual({ reserved_bytes: 0, reserved_files: 0, used_bytes: 2 * SIZE, file_count: 2 });
    expect(now.audit).toEqual({ ready: 2, rejected: 0 });

    // A later duplicate of these (now scanned) bytes is ready at once.
    const [late] = await finishedUploads('t-pending', 1);
    expect(await linkBlob(database.db, late!, facts(sha), SCANNER)).toMatchObject({ linked: true, deduplicated: true, stepsPending: false, ready: { id: late } });
    expect((await state('t-pending')).owner).toEqual({ reserved_bytes: 0, reserved_files: 0, used_bytes: 3 * SIZE, file_count: 3 });
  });

  it('does not make a duplicate of invalid bytes ready: the caller finalizes it as rejected', async () => {
    const [first, duplicate] = await finishedUploads('t-invalid', 2);
    const sha = newSha();
    const invalid = facts(sha, { metadata: null, validationError: 'not an xLights sequence', metadataError: null });
    expect(await linkBlob(database.db, first!, invalid, NO_SCANNER)).toEqual({ linked: true, deduplicated: false, ready: null, stepsPending: false });
    expect((await finalizeBlob(database.db, sha, NO_SCANNER)).map((u) => u.status)).toEqual(['rejected']);
    expect(await linkBlob(database.db, duplicate!, invalid, NO_SCANNER)).toEqual({ linked: true, deduplicated: true, ready: null, stepsPending: false });
    expect((await finalizeBlob(database.db, sha, NO_SCANNER)).map((u) => u.status)).toEqual(['rejected']);
    const after = await state('t-invalid');
    expect(after.uploads.map((u) => [u.status, u.quota_state])).toEqual([['rejected', 'released'], ['rejected', 'released']]);
    expect(after.owner).toEqual({ reserved_bytes: 0, reserved_files: 0, used_bytes: 0, file_count: 0 });
    expect(after.audit).toEqual({ ready: 0, rejected: 2 });
  });

  it('ends every duplicate ready exactly once when they race the blob’s last step', async () => {
    const [first, ...duplicates] = await finishedUploads('t-race', 13);
    const sha = newSha();
    expect((await linkBlob(database.db, first!, facts(sha), SCANNER)).stepsPending).toBe(true);
    // The scan's verdict and finalizer (as scan_blob does them) while twelve duplicates link.
    await Promise.all([
      (async () => {
        await saveScan(database.db, sha, { status: 'clean', signature: null });
        await finalizeBlob(database.db, sha, SCANNER);
      })(),
      ...duplicates.map(async (id) => {
        const link = await linkBlob(database.db, id, facts(sha), SCANNER);
        expect(link.linked).toBe(true);
        // As process_upload does: pending → the step finalizes; neither → finalize here.
        if (!link.ready && !link.stepsPending) await finalizeBlob(database.db, sha, SCANNER);
      }),
    ]);
    const after = await state('t-race');
    expect(after.uploads.map((u) => [u.status, u.quota_state])).toEqual(Array.from({ length: 13 }, () => ['ready', 'committed']));
    expect(after.owner).toEqual({ reserved_bytes: 0, reserved_files: 0, used_bytes: 13 * SIZE, file_count: 13 });
    expect(after.audit).toEqual({ ready: 13, rejected: 0 });
    const [blob] = await testDb.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha}`;
    expect(blob!.ref_count).toBe(13);
  });

  describe('process_upload', () => {
    const config = () => loadConfig({ DATA_DIR: dir, JOB_MAX_ATTEMPTS: '3' });
    const task = () =>
      processUpload({
        db: database.db,
        sql: database.sql,
        storage: createFileStorage(dir, { expirationMs: 0 }),
        config: config(),
        logger: createLogger('warn'),
        scanner: null,
      });
    const helpers = (attempts: number) => ({ job: { attempts, max_attempts: 3 } as Job }) as JobHelpers;
    // graphile-worker's public jobs view has no payload column: read it from the job's row.
    const payloadOf = async (id: string) => {
      const [job] = await testDb.sql<{ payload: JobPayload<'process_upload'> }[]>`
        select payload from graphile_worker._private_jobs
        where id = (select id from graphile_worker.jobs where key = ${jobKey('process_upload', { uploadId: id })})`;
      return job!.payload;
    };

    it('works from the job’s facts on its first attempt', async () => {
      const [id] = await finishedUploads('t-task', 1);
      await writeFile(path.join(dir, id!), randomBytes(SIZE));
      const payload = await payloadOf(id!);
      expect(payload.upload).toEqual({ storageKey: id, size: SIZE, kind: 'other', mimeType: null });
      await task()(payload, helpers(1));
      const after = await state('t-task');
      expect(after.uploads).toEqual([{ id, status: 'ready', quota_state: 'committed', ready_at: expect.any(Date), storage_key: null }]);
      expect(after.audit!.ready).toBe(1);
    });

    it('falls back to the record when the facts are stale, never failing a linked upload', async () => {
      // Linked by an earlier attempt (its copy removed as a duplicate), still waiting on the scan,
      // whose verdict came without a finalizer (that process died).
      const [original, id] = await finishedUploads('t-stale', 2);
      const sha = newSha();
      await linkBlob(database.db, original!, facts(sha), SCANNER);
      await linkBlob(database.db, id!, facts(sha), SCANNER);
      await saveScan(database.db, sha, { status: 'clean', signature: null });
      // A first attempt whose facts point at bytes that are gone.
      await task()(await payloadOf(id!), helpers(1));
      const after = await state('t-stale');
      expect(after.uploads.find((u) => u.id === id)?.status).toBe('ready');
      // Facts that do not parse are ignored too: the record is read, and a missing file fails the upload.
      const [orphan] = await finishedUploads('t-stale', 1);
      await task()({ uploadId: orphan!, upload: { storageKey: 42 } }, helpers(1));
      const [row] = await testDb.sql<{ status: string; failure_reason: string }[]>`select status, failure_reason from uploads where id = ${orphan!}`;
      expect(row).toEqual({ status: 'failed', failure_reason: 'the stored bytes of this upload are missing' });
    });
  });
});
