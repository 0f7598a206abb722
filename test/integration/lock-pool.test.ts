// The upload locker's connection pool is shared by every owner of a process: one owner may hold
// at most its share of it, and a request that cannot have a lock connection in time gets a
// retryable error (423 or 503, with Retry-After), never a 500.
import { ERRORS } from '@tus/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHttpError } from '../../src/http/errors.js';
import { createLogger } from '../../src/logger.js';
import { PostgresLocker } from '../../src/tus/pg-locker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const noRelease = () => {};

describe('PostgresLocker bounds its pool per owner', () => {
  let db: TestDatabase;
  let locker: PostgresLocker;

  beforeAll(async () => {
    db = await createTestDatabase();
    locker = new PostgresLocker(db.url, db.sql, createLogger('silent'), {
      maxConnections: 4,
      maxPerOwner: 2,
      connectionTimeoutMs: 400,
      acquireTimeoutMs: 3_000,
    });
    await locker.start();
  });
  afterAll(async () => {
    await locker?.stop();
    await db?.drop();
  });

  it('one owner cannot take every connection; a full pool or share is a retryable 423/503', async () => {
    const signal = new AbortController().signal;
    const alice = locker.forOwner('alice');
    const bob = locker.forOwner('bob');
    const carol = locker.forOwner('carol');

    const a1 = alice.newLock('a1');
    const a2 = alice.newLock('a2');
    await a1.lock(signal, noRelease);
    await a2.lock(signal, noRelease);
    expect(locker.ownerConnections('alice')).toBe(2);

    // Alice's third lock waits for one of her own, then gives up: 423 with Retry-After.
    const started = Date.now();
    const a3 = alice.newLock('a3');
    const refused = await a3.lock(signal, noRelease).then(
      () => null,
      (error: unknown) => error,
    );
    expect(Date.now() - started).toBeLessThan(2_500);
    const aliceError = toHttpError(refused);
    expect(aliceError.status).toBe(423);
    expect(aliceError.body.error.code).toBe('UPLOAD_LOCKED');
    expect(aliceError.headers['Retry-After']).toMatch(/^\d+$/);
    expect(locker.ownerConnections('alice')).toBe(2);

    // Another owner still gets connections while alice holds her share.
    const b1 = bob.newLock('b1');
    const b2 = bob.newLock('b2');
    await b1.lock(signal, noRelease);
    await b2.lock(signal, noRelease);

    // Pool full (4 of 4): a third owner gets 503 with Retry-After, not an unknown error.
    const c1 = carol.newLock('c1');
    const busy = await c1.lock(signal, noRelease).then(
      () => null,
      (error: unknown) => error,
    );
    const busyError = toHttpError(busy);
    expect(busyError.status).toBe(503);
    expect(busyError.body.error.code).toBe('UPLOAD_LOCKS_BUSY');
    expect(busyError.headers['Retry-After']).toMatch(/^\d+$/);
    expect(locker.ownerConnections('carol')).toBe(0);

    // Letting go frees the share and the connection.
    await a1.unlock();
    const again = alice.newLock('a3');
    await again.lock(signal, noRelease);
    await again.unlock();
    await a2.unlock();
    await b1.unlock();
    await b2.unlock();
    expect(locker.ownerConnections('alice')).toBe(0);
    expect(locker.ownerConnections('bob')).toBe(0);
    const c2 = carol.newLock('c1');
    await c2.lock(signal, noRelease);
    await c2.unlock();
  });

  it('a lock held by another request times out as 423 with Retry-After', async () => {
    const holder = locker.forOwner('dave').newLock('shared');
    await holder.lock(new AbortController().signal, noRelease);
    const quick = new PostgresLocker(db.url, db.sql, createLogger('silent'), { acquireTimeoutMs: 300, maxConnections: 2 });
    try {
      const waiter = quick.forOwner('erin').newLock('shared');
      const error = await waiter.lock(new AbortController().signal, noRelease).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBe(ERRORS.ERR_LOCK_TIMEOUT);
      const mapped = toHttpError(error);
      expect(mapped.status).toBe(423);
      expect(mapped.headers['Retry-After']).toMatch(/^\d+$/);
      expect(quick.ownerConnections('erin')).toBe(0);
    } finally {
      await holder.unlock();
      await quick.stop();
    }
  });

  it("node-postgres pool timeouts map to 503 with Retry-After", () => {
    const mapped = toHttpError(new Error('timeout exceeded when trying to connect'));
    expect(mapped.status).toBe(503);
    expect(mapped.headers['Retry-After']).toMatch(/^\d+$/);
  });
});
