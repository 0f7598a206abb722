// The running digests of uploads in flight (src/storage/digesting-store.ts): continued only at the
// offset they cover, taken once, and bounded in number and idle time.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ArrivalDigests } from '../../src/storage/digesting-store.js';

/** Feeds `bytes` into the digest of `id` as one write at `offset` would; false if not hashed. */
function write(digests: ArrivalDigests, id: string, offset: number, bytes: Buffer): boolean {
  const state = digests.begin(id, offset);
  if (!state) return false;
  state.sha256.update(bytes);
  state.md5.update(bytes);
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
    expect(digests.take('u', data.length)).toEqual({ sha256: hex('sha256', data), md5: hex('md5', data) });
    expect(digests.take('u', data.length)).toBeNull();
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
