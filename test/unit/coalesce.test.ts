// The application's group commit (src/db/coalesce.ts): calls that arrive while the database is
// busy go together; a failed batch is retried call by call so only the bad call fails.
import { describe, expect, it } from 'vitest';
import { coalesce } from '../../src/db/coalesce.js';

/** A fake statement: records each batch, answers when released. */
function recorder(fail: (items: number[]) => Error | null = () => null) {
  const batches: number[][] = [];
  const waiting: (() => void)[] = [];
  const many = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push(items);
      waiting.push(() => {
        const error = fail(items);
        if (error) reject(error);
        else resolve(items.map((item) => `r${item}`));
      });
    });
  const releaseAll = async () => {
    while (waiting.length > 0) {
      waiting.splice(0).forEach((release) => release());
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { batches, many, releaseAll };
}

describe('coalesce', () => {
  it('runs a lone call at once and batches the calls that arrive while it runs', async () => {
    const fake = recorder();
    const call = coalesce(fake.many, { maxBatch: 10, maxInFlight: 1 });
    const first = call(1);
    expect(fake.batches).toEqual([[1]]);
    const rest = [2, 3, 4].map(call);
    expect(fake.batches).toEqual([[1]]);
    await fake.releaseAll();
    expect(await first).toBe('r1');
    expect(await Promise.all(rest)).toEqual(['r2', 'r3', 'r4']);
    expect(fake.batches).toEqual([[1], [2, 3, 4]]);
  });

  it('keeps maxInFlight runs going and no batch above maxBatch', async () => {
    const fake = recorder();
    const call = coalesce(fake.many, { maxBatch: 3, maxInFlight: 2 });
    const all = Array.from({ length: 10 }, (_, i) => call(i));
    expect(fake.batches).toEqual([[0], [1]]);
    await fake.releaseAll();
    expect(await Promise.all(all)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    expect(fake.batches).toEqual([[0], [1], [2, 3, 4], [5, 6, 7], [8, 9]]);
  });

  it('retries a failed batch call by call: only the bad call fails, with its own error', async () => {
    const fake = recorder((items) => (items.includes(3) ? new Error(`bad ${items.join(',')}`) : null));
    const call = coalesce(fake.many, { maxBatch: 10, maxInFlight: 1 });
    const all = [1, 2, 3, 4].map((item) => call(item).then(String, (error: Error) => error.message));
    await fake.releaseAll();
    expect(await Promise.all(all)).toEqual(['r1', 'r2', 'bad 3', 'r4']);
    expect(fake.batches).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
  });

  it('does not retry call by call when the failure is not about the calls (database down)', async () => {
    const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const fake = recorder((items) => (items.length > 1 ? down : null));
    const call = coalesce(fake.many, { maxBatch: 10, maxInFlight: 1, retryAlone: (error) => error !== down });
    const all = [1, 2, 3].map((item) => call(item).then(String, (error: Error) => error.message));
    await fake.releaseAll();
    expect(await Promise.all(all)).toEqual(['r1', 'connect ECONNREFUSED', 'connect ECONNREFUSED']);
    expect(fake.batches).toEqual([[1], [2, 3]]);
  });

  it('fails every call of a batch that returns the wrong number of results, without retrying', async () => {
    let calls = 0;
    const call = coalesce(
      async (items: number[]) => {
        calls++;
        await new Promise((resolve) => setImmediate(resolve));
        return items.length > 1 ? ['only one'] : ['r'];
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const all = [1, 2, 3].map((item) => call(item).then(String, (error: Error) => error.message));
    expect(await Promise.all(all)).toEqual(['r', 'a batch of 2 calls returned 1 results', 'a batch of 2 calls returned 1 results']);
    expect(calls).toBe(2);
  });
});
