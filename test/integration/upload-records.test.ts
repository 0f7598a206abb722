// Creation and finish of uploads batched as one statement (src/db/uploads.ts, coalesce.ts),
// against a real PostgreSQL: a batch reserves quota per owner exactly as single creations would,
// an owner over a limit is refused call by call with the precise error, a bad call never fails
// the others, and every finished upload gets exactly one job and one audit entry however many
// callers race to finish it.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/db/client.js';
import { jobKey, type JobPayload } from '../../src/db/jobs.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { insertUploadRecords, markUploadsFinished, uploadRecords, type NewUpload } from '../../src/db/uploads.js';
import { AppError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const NO_LIMITS = { maxBytes: null, maxFiles: null, maxFileSize: null, monthlyBytes: null };
const newId = () => randomBytes(16).toString('hex');
const upload = (ownerId: string, size: number | null = 1000, extra: Partial<NewUpload> = {}): NewUpload => ({
  id: newId(),
  ownerId,
  filename: `${ownerId}.bin`,
  mimeType: null,
  kind: 'other',
  size,
  tusMetadata: { filename: `${ownerId}.bin` },
  expiresAt: new Date(Date.now() + 3_600_000),
  ...extra,
});

describe('batched upload records', () => {
  let testDb: TestDatabase;
  let database: Database;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    await migrateDatabase(testDb.sql, testDb.url, createLogger('warn'));
    database = connect(testDb.url, { max: 8 });
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  /** Owner counters next to what the upload rows say they should be. */
  async function counters(ownerId: string) {
    const [owner] = await testDb.sql<{ reserved_bytes: number; reserved_files: number; month_bytes: number }[]>`
      select reserved_bytes::int, reserved_files, month_bytes::int from owners where id = ${ownerId}`;
    const [rows] = await testDb.sql<{ bytes: number; files: number }[]>`
      select coalesce(sum(reserved_bytes), 0)::int as bytes,
             (count(*) filter (where coalesce(upload_concat, '') <> 'partial'))::int as files
      from uploads where owner_id = ${ownerId} and quota_state = 'reserved'`;
    const [audit] = await testDb.sql<{ n: number }[]>`
      select count(*)::int as n from audit_log where owner_id = ${ownerId} and action = 'UPLOAD_CREATED'`;
    return { owner, rows, audits: audit!.n };
  }

  it('reserves per owner in one statement, and refuses an owner whose batch would pass a limit', async () => {
    await testDb.sql`insert into owners (id) values ('batch-a'), ('batch-b'), ('batch-c')`;
    await testDb.sql`update owners set max_files = 2 where id = 'batch-b'`;
    const inputs = [
      upload('batch-a'), upload('batch-b'), upload('batch-a', null), upload('batch-b'), upload('batch-b'),
      upload('batch-c', 5, { uploadConcat: 'partial' }), upload('batch-new'),
    ];
    const created = await insertUploadRecords(database.db, inputs, NO_LIMITS);
    // batch-b asks for 3 files with room for 2: none of its uploads in this statement; batch-new
    // has no owner row yet. Both go the single path (next test).
    expect(created).toEqual(['created', 'refused', 'created', 'refused', 'refused', 'created', 'unknown-owner']);
    const a = await counters('batch-a');
    expect(a.owner).toEqual({ reserved_bytes: 1000, reserved_files: 2, month_bytes: 1000 });
    expect(a.rows).toEqual({ bytes: 1000, files: 2 });
    expect(a.audits).toBe(2);
    const c = await counters('batch-c');
    expect(c.owner).toEqual({ reserved_bytes: 5, reserved_files: 0, month_bytes: 5 });
    const b = await counters('batch-b');
    expect(b.owner).toEqual({ reserved_bytes: 0, reserved_files: 0, month_bytes: 0 });
    expect(b.audits).toBe(0);
  });

  it('creates racing uploads batched together: exactly the allowed number per owner, precise errors for the rest', async () => {
    await testDb.sql`insert into owners (id, max_files) values ('race-limited', 7), ('race-free', null)`;
    // One call in flight at a time, so the 59 calls behind the first are batched.
    const records = uploadRecords(database.db, { quota: NO_LIMITS, maxAttempts: 3, batching: { maxBatch: 64, maxInFlight: 1 } });
    const calls = Array.from({ length: 60 }, (_, i) => upload(i % 2 === 0 ? 'race-limited' : i % 3 === 0 ? 'race-free' : 'race-new'));
    const outcomes = await Promise.allSettled(calls.map((input) => records.create(input)));
    const byOwner = (owner: string, status: 'fulfilled' | 'rejected') =>
      outcomes.filter((outcome, i) => calls[i]!.ownerId === owner && outcome.status === status);
    expect(byOwner('race-limited', 'fulfilled')).toHaveLength(7);
    const refusals = byOwner('race-limited', 'rejected') as PromiseRejectedResult[];
    expect(refusals).toHaveLength(23);
    for (const refusal of refusals) {
      expect(refusal.reason).toBeInstanceOf(AppError);
      expect((refusal.reason as AppError).code).toBe('QUOTA_FILES_EXCEEDED');
    }
    expect(byOwner('race-free', 'rejected')).toHaveLength(0);
    expect(byOwner('race-new', 'rejected')).toHaveLength(0);
    for (const owner of ['race-limited', 'race-free', 'race-new']) {
      const { owner: counted, rows, audits } = await counters(owner);
      const expected = calls.filter((input, i) => input.ownerId === owner && outcomes[i]!.status === 'fulfilled').length;
      expect(counted).toEqual({ reserved_bytes: expected * 1000, reserved_files: expected, month_bytes: expected * 1000 });
      expect(rows).toEqual({ bytes: expected * 1000, files: expected });
      expect(audits).toBe(expected);
    }
  });

  it('takes a new owner’s first burst through the batched path too, not one transaction per upload', async () => {
    let transactions = 0;
    const counting = new Proxy(database.db, {
      get: (target, property, receiver) =>
        property === 'transaction'
          ? (...args: Parameters<typeof target.transaction>) => {
              transactions++;
              return target.transaction(...args);
            }
          : Reflect.get(target, property, receiver),
    });
    const records = uploadRecords(counting, { quota: NO_LIMITS, maxAttempts: 3, batching: { maxBatch: 64, maxInFlight: 1 } });
    const calls = Array.from({ length: 30 }, () => upload('brand-new'));
    await Promise.all(calls.map((input) => records.create(input)));
    expect(transactions).toBe(0);
    const { owner, rows, audits } = await counters('brand-new');
    expect(owner).toEqual({ reserved_bytes: 30_000, reserved_files: 30, month_bytes: 30_000 });
    expect(rows).toEqual({ bytes: 30_000, files: 30 });
    expect(audits).toBe(30);
  });

  it('a bad call in a batch fails alone', async () => {
    const records = uploadRecords(database.db, { quota: NO_LIMITS, maxAttempts: 3, batching: { maxBatch: 64, maxInFlight: 1 } });
    const existing = upload('batch-a');
    await records.create(existing);
    const calls = [upload('batch-a'), upload('batch-a'), { ...upload('batch-a'), id: existing.id }, upload('batch-a')];
    const outcomes = await Promise.allSettled(calls.map((input) => records.create(input)));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    // drizzle wraps the driver's error: a unique violation (23505), of this call only.
    const reason = (outcomes[2] as PromiseRejectedResult).reason as { cause?: { code?: string } };
    expect(reason.cause?.code).toBe('23505');
  });

  it('finishes each upload once, with one job and one audit entry, however many callers race', async () => {
    await testDb.sql`insert into owners (id) values ('finisher') on conflict do nothing`;
    const inputs = Array.from({ length: 12 }, () => upload('finisher'));
    const partial = upload('finisher', 1000, { uploadConcat: 'partial' });
    await insertUploadRecords(database.db, [...inputs, partial], NO_LIMITS);
    const records = uploadRecords(database.db, { quota: NO_LIMITS, maxAttempts: 3, batching: { maxBatch: 5, maxInFlight: 2 } });
    // Every upload finished by three callers at once (hook, HEAD, reconciler), plus a partial
    // upload and one that does not exist.
    const calls = [...inputs, ...inputs, ...inputs].map((input) => ({ id: input.id, size: 1000 }));
    const started = await Promise.all([...calls, { id: partial.id, size: 1000 }, { id: newId(), size: 1 }].map((call) => records.finish(call.id, call.size)));
    expect(started.slice(-2)).toEqual([false, false]);
    for (const input of inputs) {
      expect(calls.filter((call, i) => call.id === input.id && started[i]).length).toBe(1);
    }
    // graphile-worker's public jobs view has no payload column: the payload from the job's row.
    const jobs = await testDb.sql<{ key: string; task: string; max_attempts: number; payload: JobPayload<'process_upload'> }[]>`
      select j.key, j.task_identifier as task, j.max_attempts, p.payload
      from graphile_worker.jobs j join graphile_worker._private_jobs p on p.id = j.id
      where j.task_identifier = 'process_upload'`;
    expect(jobs.map((job) => job.key).sort()).toEqual(inputs.map((input) => jobKey('process_upload', { uploadId: input.id })).sort());
    for (const job of jobs) {
      expect(job.task).toBe('process_upload');
      expect(job.max_attempts).toBe(3);
      expect(jobKey('process_upload', job.payload)).toBe(job.key);
      // The facts the job's first attempt works from, as the record has them after the finish.
      expect(job.payload.upload).toEqual({ storageKey: job.payload.uploadId, size: 1000, kind: 'other', mimeType: null });
    }
    const rows = await testDb.sql<{ status: string; n: number }[]>`
      select u.status, count(a.id)::int as n from uploads u
      left join audit_log a on a.upload_id = u.id and a.action = 'UPLOAD_COMPLETED'
      where u.id in ${testDb.sql([...inputs, partial].map((input) => input.id))} group by u.id, u.status`;
    expect(rows.filter((row) => row.status === 'processing' && row.n === 1)).toHaveLength(12);
    expect(rows.filter((row) => row.status === 'uploading' && row.n === 0)).toHaveLength(1);
  });

  it('a batch that finishes nothing enqueues nothing', async () => {
    const before = await testDb.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs`;
    expect(await markUploadsFinished(database.db, [{ id: newId(), size: 1 }, { id: newId(), size: 2 }], { maxAttempts: 3 })).toEqual([false, false]);
    const after = await testDb.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });
});
