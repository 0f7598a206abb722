// The record's `deduplicated` at the database level (security issue #18): true only for the
// owner's own earlier copy, and exact when identical links race for the blob row. The race is
// forced: one link holds the blob in an open transaction while a second one, whose snapshot
// predates that link, waits for it; the second must still see the first as its owner's copy.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/db/client.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { linkBlob, type ContentFacts, type StepOptions } from '../../src/db/processing.js';
import { insertUploadRecords, markUploadsFinished } from '../../src/db/uploads.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/ports.js';

const NO_LIMITS = { maxBytes: null, maxFiles: null, maxFileSize: null, monthlyBytes: null };
const NO_SCANNER: StepOptions = { scanner: false, scanRequired: false, maxAttempts: 3 };
const SIZE = 500;
const newId = () => randomBytes(16).toString('hex');
const facts = (sha256: string): ContentFacts => ({
  sha256,
  md5: sha256.slice(0, 32),
  size: SIZE,
  kind: 'other',
  format: null,
  mimeType: 'application/octet-stream',
  metadata: { metadata: null, validationError: null, metadataError: null },
});

describe('deduplicated, as recorded at link time', () => {
  let testDb: TestDatabase;
  let database: Database;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    await migrateDatabase(testDb.sql, testDb.url, createLogger('warn'));
    database = connect(testDb.url, { max: 6 });
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  async function finished(ownerId: string): Promise<string> {
    await testDb.sql`insert into owners (id) values (${ownerId}) on conflict do nothing`;
    const id = newId();
    const input = { id, ownerId, filename: `${id}.bin`, mimeType: null, kind: 'other' as const, size: SIZE, tusMetadata: {}, expiresAt: null };
    expect(await insertUploadRecords(database.db, [input], NO_LIMITS)).toEqual(['created']);
    expect(await markUploadsFinished(database.db, [{ id, size: SIZE }], { maxAttempts: 3 })).toEqual([true]);
    return id;
  }
  const flags = async (ids: string[]) =>
    Object.fromEntries(
      (await testDb.sql<{ id: string; deduplicated: boolean }[]>`select id, deduplicated from uploads where id in ${testDb.sql(ids)}`).map((r) => [
        r.id,
        r.deduplicated,
      ]),
    );

  it("is false for another owner's copy and true for the owner's own", async () => {
    const sha = randomBytes(32).toString('hex');
    const theirs = await finished('dd-other');
    const mine = await finished('dd-me');
    const again = await finished('dd-me');
    expect(await linkBlob(database.db, theirs, facts(sha), NO_SCANNER)).toMatchObject({ linked: true, deduplicated: false });
    // Internally a duplicate (its own stored copy goes), but its owner is not told.
    expect(await linkBlob(database.db, mine, facts(sha), NO_SCANNER)).toMatchObject({ linked: true, deduplicated: true });
    expect(await linkBlob(database.db, again, facts(sha), NO_SCANNER)).toMatchObject({ linked: true, deduplicated: true });
    expect(await flags([theirs, mine, again])).toEqual({ [theirs]: false, [mine]: false, [again]: true });
  });

  it.each([
    ['an existing blob of another owner', true],
    ['new bytes', false],
  ])('is exact when a same-owner link waits for another one holding the blob (%s)', async (_label, existing) => {
    const sha = randomBytes(32).toString('hex');
    if (existing) await linkBlob(database.db, await finished('dd-race-other'), facts(sha), NO_SCANNER);
    const owner = `dd-race-${existing ? 'existing' : 'new'}`;
    const first = await finished(owner);
    const second = await finished(owner);

    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let linkedFirst!: () => void;
    const firstLinked = new Promise<void>((resolve) => (linkedFirst = resolve));
    const holder = database.db.transaction(async (tx) => {
      await linkBlob(tx, first, facts(sha), NO_SCANNER);
      linkedFirst();
      await gate;
    });
    await firstLinked;
    // The second link starts (its snapshot does not see the first) and waits for the blob row.
    const racing = linkBlob(database.db, second, facts(sha), NO_SCANNER);
    await waitFor(
      async () => {
        const [row] = await testDb.sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%insert into blobs%'`;
        return row!.n > 0;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'the second link to wait for the blob' },
    );
    release();
    await holder;
    expect(await racing).toMatchObject({ linked: true, deduplicated: true, ready: { id: second } });
    expect(await flags([first, second])).toEqual({ [first]: false, [second]: true });
    const [blob] = await testDb.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha}`;
    expect(Number(blob!.ref_count)).toBe(existing ? 3 : 2);
    // Each linked once: ready once, one audit entry each.
    const audit = await testDb.sql`select 1 from audit_log where upload_id in ${testDb.sql([first, second])} and action = 'UPLOAD_READY'`;
    expect(audit).toHaveLength(2);
  });
});
