// The running digests of uploads in flight (src/storage/digesting-store.ts): continued only at the
// offset they cover, taken once, and bounded in number and idle time.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { absorb, ARRIVAL_HEAD_BYTES, ArrivalDigests } from '../../src/storage/digesting-store.js';

/** Feeds `bytes` into the digest of `id` as one write at `offset` would; false if not hashed. */
function write(digests: ArrivalDigests, id: string, offset: number, bytes: Buffer): boolean {
  const state = digests.begin(id, offset);
  if (!state) return false;
  absorb(state, bytes);
  digests.settle(id, state, offset + bytes.length);
  return true;
}

const hex = (algorithm: string, bytes: Buffer) => createHash(algorithm).update(bytes).digest('hex');

describe('ArrivalDigests', () => {
  afterEach(() => vi.useRealTimers());

  it('continues a digest only at the offset it covers and hands it over once', () => {
    const digests = new ArrivalDigests();
    const data = Buffer.from('hello, digest on arrival');
    expect(write(digests, 'u', 0, data.subarray(0, 5))).toBe(true);
    expect(write(digests, 'u', 5, data.subarray(5))).toBe(true);
    expect(digests.take('u', data.length)).toEqual({ sha256: hex('sha256', data), md5: hex('md5', data), head: data });
    expect(digests.take('u', data.length)).toBeNull();
  });

  it('keeps the first 64 KiB of small uploads only, and for at most maxHeads at once', () => {
    const digests = new ArrivalDigests({ headsUpTo: 3 * ARRIVAL_HEAD_BYTES, maxHeads: 2 });
    const data = Buffer.alloc(2 * ARRIVAL_HEAD_BYTES, 1);
    write(digests, 'small', 0, data.subarray(0, 1000));
    write(digests, 'small', 1000, data.subarray(1000));
    expect(digests.take('small', data.length)?.head).toEqual(data.subarray(0, ARRIVAL_HEAD_BYTES));

    write(digests, 'large', 0, Buffer.alloc(4 * ARRIVAL_HEAD_BYTES));
    expect(digests.take('large', 4 * ARRIVAL_HEAD_BYTES)?.head).toBeNull();

    write(digests, 'a', 0, Buffer.alloc(1));
    write(digests, 'b', 0, Buffer.alloc(1));
    write(digests, 'c', 0, Buffer.alloc(1));
    expect(digests.take('c', 1)?.head).toBeNull();
    expect(digests.take('a', 1)?.head).toEqual(Buffer.alloc(1));
    // A head given back makes room for the next upload's.
    write(digests, 'd', 0, Buffer.alloc(1));
    expect(digests.take('d', 1)?.head).toEqual(Buffer.alloc(1));
  });

  it('drops the digest when a write starts elsewhere, or the length is not what was hashed', () => {
    const digests = new ArrivalDigests();
    write(digests, 'gap', 0, Buffer.alloc(10));
    // Another instance wrote bytes 10..19.
    expect(write(digests, 'gap', 20, Buffer.alloc(5))).toBe(false);
    expect(digests.take('gap', 25)).toBeNull();

    write(digests, 'short', 0, Buffer.alloc(10));
    expect(digests.take('short', 11)).toBeNull();
    expect(digests.size).toBe(0);
  });

  it('keeps at most maxUploads digests, dropping the least recently written', () => {
    const digests = new ArrivalDigests({ maxUploads: 2 });
    write(digests, 'a', 0, Buffer.alloc(1));
    write(digests, 'b', 0, Buffer.alloc(1));
    write(digests, 'a', 1, Buffer.alloc(1));
    write(digests, 'c', 0, Buffer.alloc(1));
    expect(digests.size).toBe(2);
    expect(digests.take('b', 1)).toBeNull();
    expect(digests.take('a', 2)).not.toBeNull();
    expect(digests.take('c', 1)).not.toBeNull();
  });

  it('drops digests idle for longer than maxIdleMs when a new one starts', () => {
    vi.useFakeTimers({ now: 0 });
    const digests = new ArrivalDigests({ maxIdleMs: 1000 });
    write(digests, 'old', 0, Buffer.alloc(1));
    vi.setSystemTime(2000);
    write(digests, 'new', 0, Buffer.alloc(1));
    expect(digests.take('old', 1)).toBeNull();
    expect(digests.take('new', 1)).not.toBeNull();
  });

  it('forgets a removed upload', () => {
    const digests = new ArrivalDigests();
    write(digests, 'gone', 0, Buffer.alloc(3));
    digests.drop('gone');
    expect(digests.take('gone', 3)).toBeNull();
  });
});
