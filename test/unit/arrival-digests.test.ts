// The running digests of uploads in flight (src/storage/digesting-store.ts): continued only at the
// offset they cover, taken once, and bounded in number and idle time.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { absorb, ARRIVAL_HEAD_BYTES, ArrivalDigests } from '../../src/storage/digesting-store.js';
import { metadataFromHead } from '../../tasks/steps/metadata.js';
import { metadataFromSummary, summarizeFirstBytes } from '../../tasks/steps/first-bytes.js';
import { buildEseq, buildFseqV2, buildPng } from '../support/fixture-builders.js';

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
    expect(digests.take('u', data.length)).toEqual({ sha256: hex('sha256', data), md5: hex('md5', data), head: data, first: null });
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

  it('summarises the head of an upload that outgrows the small files, then lets it go', () => {
    const summaries: Buffer[] = [];
    const digests = new ArrivalDigests({
      headsUpTo: 2 * ARRIVAL_HEAD_BYTES,
      maxHeads: 1,
      summarizeHead: (head) => {
        summaries.push(head);
        return summarizeFirstBytes(head);
      },
    });
    const data = buildFseqV2({ channels: 512, frames: 400 });
    expect(data.length).toBeGreaterThan(2 * ARRIVAL_HEAD_BYTES);
    write(digests, 'big', 0, data.subarray(0, 1000));
    write(digests, 'big', 1000, data.subarray(1000, ARRIVAL_HEAD_BYTES + 5));
    expect(summaries).toHaveLength(0);
    write(digests, 'big', ARRIVAL_HEAD_BYTES + 5, data.subarray(ARRIVAL_HEAD_BYTES + 5));
    expect(summaries).toEqual([data.subarray(0, ARRIVAL_HEAD_BYTES)]);
    // Its head slot is free again for a small upload.
    write(digests, 'small', 0, Buffer.alloc(1));
    expect(digests.take('small', 1)?.head).toEqual(Buffer.alloc(1));
    const taken = digests.take('big', data.length);
    expect(taken).toMatchObject({ sha256: hex('sha256', data), md5: hex('md5', data), head: null });
    expect(taken?.first).toEqual(summarizeFirstBytes(data.subarray(0, ARRIVAL_HEAD_BYTES)));
  });

  it('summarises nothing for an upload whose head was not kept', () => {
    const digests = new ArrivalDigests({ headsUpTo: ARRIVAL_HEAD_BYTES, maxHeads: 0, summarizeHead: summarizeFirstBytes });
    write(digests, 'big', 0, Buffer.alloc(2 * ARRIVAL_HEAD_BYTES));
    expect(digests.take('big', 2 * ARRIVAL_HEAD_BYTES)).toMatchObject({ head: null, first: null });
  });
});

describe('first bytes summarised on arrival', () => {
  const head = (file: Buffer) => file.subarray(0, ARRIVAL_HEAD_BYTES);

  it('give the metadata the head itself gives, the size check included', () => {
    const file = buildFseqV2({ channels: 512, frames: 400 });
    const first = summarizeFirstBytes(head(file));
    expect(first.sniffed?.format).toBe('fseq');
    expect(first.fseq).toMatchObject({ channelCount: 512, frameCount: 400 });
    expect(metadataFromSummary('fseq', first, file.length)).toEqual(metadataFromHead('fseq', head(file), file.length));
    // A file shorter than its header says: the same validation error, found with the stored size.
    const short = metadataFromSummary('fseq', first, file.length - 7);
    expect(short?.validationError).toBeTruthy();
    expect(short).toEqual(metadataFromHead('fseq', head(file), file.length - 7));
  });

  it('carry why a header does not parse', () => {
    const file = buildFseqV2({ channels: 512, frames: 400, lie: { headerLength: 9 } });
    const first = summarizeFirstBytes(head(file));
    expect(first.fseqError).toBeTruthy();
    expect(metadataFromSummary('fseq', first, file.length)).toEqual(metadataFromHead('fseq', head(file), file.length));
  });

  it('leave ESEQ (its header needs the size) and other content to processing', () => {
    const eseq = summarizeFirstBytes(head(buildEseq({ channels: 300, frames: 400 })));
    expect(eseq).toEqual({ sniffed: expect.objectContaining({ format: 'eseq' }), fseq: null, fseqError: null });
    expect(metadataFromSummary('fseq', eseq, 300 * 400 + 20)).toBeNull();
    const png = summarizeFirstBytes(buildPng());
    expect(png).toEqual({ sniffed: expect.objectContaining({ format: 'png' }), fseq: null, fseqError: null });
    expect(metadataFromSummary('image', png, 1234)).toBeNull();
    expect(metadataFromSummary('other', png, 1234)).toEqual({ metadata: null, validationError: null, metadataError: null });
  });
});
