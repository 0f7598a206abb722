// The running digests of uploads in flight (src/storage/digesting-store.ts): continued only at the
// offset they cover, taken once, and bounded in number and idle time.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { absorb, ARRIVAL_HEAD_BYTES, ArrivalDigests } from '../../src/storage/digesting-store.js';
import { HashThreads } from '../../src/storage/hash-thread.js';
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

  it('continues a digest only at the offset it covers and hands it over once', async () => {
    const digests = new ArrivalDigests();
    const data = Buffer.from('hello, digest on arrival');
    expect(write(digests, 'u', 0, data.subarray(0, 5))).toBe(true);
    expect(write(digests, 'u', 5, data.subarray(5))).toBe(true);
    expect(await digests.take('u', data.length)).toEqual({ sha256: hex('sha256', data), md5: hex('md5', data), head: data, first: null });
    expect(await digests.take('u', data.length)).toBeNull();
  });

  it('keeps the first 64 KiB of small uploads only, and for at most maxHeads at once', async () => {
    const digests = new ArrivalDigests({ headsUpTo: 3 * ARRIVAL_HEAD_BYTES, maxHeads: 2 });
    const data = Buffer.alloc(2 * ARRIVAL_HEAD_BYTES, 1);
    write(digests, 'small', 0, data.subarray(0, 1000));
    write(digests, 'small', 1000, data.subarray(1000));
    expect((await digests.take('small', data.length))?.head).toEqual(data.subarray(0, ARRIVAL_HEAD_BYTES));

    write(digests, 'large', 0, Buffer.alloc(4 * ARRIVAL_HEAD_BYTES));
    expect((await digests.take('large', 4 * ARRIVAL_HEAD_BYTES))?.head).toBeNull();

    write(digests, 'a', 0, Buffer.alloc(1));
    write(digests, 'b', 0, Buffer.alloc(1));
    write(digests, 'c', 0, Buffer.alloc(1));
    expect((await digests.take('c', 1))?.head).toBeNull();
    expect((await digests.take('a', 1))?.head).toEqual(Buffer.alloc(1));
    // A head given back makes room for the next upload's.
    write(digests, 'd', 0, Buffer.alloc(1));
    expect((await digests.take('d', 1))?.head).toEqual(Buffer.alloc(1));
  });

  it('drops the digest when a write starts elsewhere, or the length is not what was hashed', async () => {
    const digests = new ArrivalDigests();
    write(digests, 'gap', 0, Buffer.alloc(10));
    // Another instance wrote bytes 10..19.
    expect(write(digests, 'gap', 20, Buffer.alloc(5))).toBe(false);
    expect(await digests.take('gap', 25)).toBeNull();

    write(digests, 'short', 0, Buffer.alloc(10));
    expect(await digests.take('short', 11)).toBeNull();
    expect(digests.size).toBe(0);
  });

  it('keeps at most maxUploads digests, dropping the least recently written', async () => {
    const digests = new ArrivalDigests({ maxUploads: 2 });
    write(digests, 'a', 0, Buffer.alloc(1));
    write(digests, 'b', 0, Buffer.alloc(1));
    write(digests, 'a', 1, Buffer.alloc(1));
    write(digests, 'c', 0, Buffer.alloc(1));
    expect(digests.size).toBe(2);
    expect(await digests.take('b', 1)).toBeNull();
    expect(await digests.take('a', 2)).not.toBeNull();
    expect(await digests.take('c', 1)).not.toBeNull();
  });

  it('drops digests idle for longer than maxIdleMs when a new one starts', async () => {
    vi.useFakeTimers({ now: 0 });
    const digests = new ArrivalDigests({ maxIdleMs: 1000 });
    write(digests, 'old', 0, Buffer.alloc(1));
    vi.setSystemTime(2000);
    write(digests, 'new', 0, Buffer.alloc(1));
    expect(await digests.take('old', 1)).toBeNull();
    expect(await digests.take('new', 1)).not.toBeNull();
  });

  it('forgets a removed upload', async () => {
    const digests = new ArrivalDigests();
    write(digests, 'gone', 0, Buffer.alloc(3));
    digests.drop('gone');
    expect(await digests.take('gone', 3)).toBeNull();
  });

  it('summarises the head of an upload that outgrows the small files, then lets it go', async () => {
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
    expect((await digests.take('small', 1))?.head).toEqual(Buffer.alloc(1));
    const taken = await digests.take('big', data.length);
    expect(taken).toMatchObject({ sha256: hex('sha256', data), md5: hex('md5', data), head: null });
    expect(taken?.first).toEqual(summarizeFirstBytes(data.subarray(0, ARRIVAL_HEAD_BYTES)));
  });

  it('summarises nothing for an upload whose head was not kept', async () => {
    const digests = new ArrivalDigests({ headsUpTo: ARRIVAL_HEAD_BYTES, maxHeads: 0, summarizeHead: summarizeFirstBytes });
    write(digests, 'big', 0, Buffer.alloc(2 * ARRIVAL_HEAD_BYTES));
    expect(await digests.take('big', 2 * ARRIVAL_HEAD_BYTES)).toMatchObject({ head: null, first: null });
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

// Uploads declared larger than the small files are hashed on a hashing thread
// (src/storage/hash-thread.ts): same digests, bounded bytes in flight, and a thread that dies
// loses only the digests it held.
describe('ArrivalDigests on a hashing thread', () => {
  const MiB = 2 ** 20;
  let threads: HashThreads | undefined;
  afterEach(async () => {
    await threads?.stop();
    threads = undefined;
  });

  /** As `write` above, waiting where the thread holds the bytes back; how often it did. */
  async function writeAwaiting(digests: ArrivalDigests, id: string, offset: number, bytes: Buffer, chunk = 64 * 1024): Promise<number> {
    const state = digests.begin(id, offset);
    if (!state) throw new Error('not hashed');
    let waits = 0;
    for (let at = 0; at < bytes.length; at += chunk) {
      const waiting = absorb(state, bytes.subarray(at, at + chunk));
      if (waiting) {
        waits += 1;
        await waiting;
      }
    }
    await state.hash.flush();
    digests.settle(id, state, offset + bytes.length);
    return waits;
  }

  it('gives the digests of the request thread for large uploads, and keeps small ones here', async () => {
    threads = new HashThreads();
    const digests = new ArrivalDigests({ hashThreads: threads, summarizeHead: summarizeFirstBytes });
    const data = randomBytes(5 * MiB + 13);
    digests.declareLength('large', data.length);
    await writeAwaiting(digests, 'large', 0, data.subarray(0, 2 * MiB + 1));
    await writeAwaiting(digests, 'large', 2 * MiB + 1, data.subarray(2 * MiB + 1));
    expect(threads.opened).toBe(1);
    const taken = await digests.take('large', data.length);
    expect(taken).toMatchObject({ sha256: hex('sha256', data), md5: hex('md5', data), head: null });
    expect(taken?.first).toEqual(summarizeFirstBytes(data.subarray(0, ARRIVAL_HEAD_BYTES)));

    const small = randomBytes(MiB);
    digests.declareLength('small', small.length);
    await writeAwaiting(digests, 'small', 0, small);
    expect(await digests.take('small', small.length)).toEqual({ sha256: hex('sha256', small), md5: hex('md5', small), head: small.subarray(0, ARRIVAL_HEAD_BYTES), first: null });
    expect(threads.opened).toBe(1);
    expect(threads.inFlightBytes).toBe(0);
  });

  it('holds writes back instead of letting bytes in flight pass the bounds', async () => {
    const bounds = { batchBytes: 64 * 1024, maxInFlightPerUpload: 256 * 1024, maxInFlight: 512 * 1024 };
    threads = new HashThreads({ threads: 2, ...bounds });
    const digests = new ArrivalDigests({ hashThreads: threads });
    const files = Array.from({ length: 4 }, () => randomBytes(16 * MiB));
    files.forEach((file, i) => digests.declareLength(`u${i}`, file.length));
    // Four uploads at once, chunks of odd sizes: more than the total bound is offered.
    const waits = await Promise.all(files.map((file, i) => writeAwaiting(digests, `u${i}`, 0, file, 100_000)));
    expect(waits.reduce((a, b) => a + b)).toBeGreaterThan(0);
    expect(threads.peak.perUpload).toBeGreaterThan(0);
    expect(threads.peak.perUpload).toBeLessThanOrEqual(bounds.maxInFlightPerUpload);
    expect(threads.peak.total).toBeLessThanOrEqual(bounds.maxInFlight);
    for (const [i, file] of files.entries()) expect(await digests.take(`u${i}`, file.length)).toMatchObject({ sha256: hex('sha256', file), md5: hex('md5', file) });
    expect(threads.inFlightBytes).toBe(0);
  });

  it('drops a reset digest in order with the bytes before it, and starts over at offset 0', async () => {
    threads = new HashThreads();
    const digests = new ArrivalDigests({ hashThreads: threads });
    const data = randomBytes(3 * MiB);
    digests.declareLength('reset', data.length);
    await writeAwaiting(digests, 'reset', 0, randomBytes(MiB + 5));
    // The client starts the upload over (another instance wrote meanwhile, say): a new digest.
    digests.declareLength('reset', data.length);
    await writeAwaiting(digests, 'reset', 0, data);
    expect(await digests.take('reset', data.length)).toMatchObject({ sha256: hex('sha256', data), md5: hex('md5', data) });
    expect(threads.opened).toBe(2);
  });

  it('loses the digests a dead thread held, says so once, and hashes new uploads on a new thread', async () => {
    const warnings: unknown[] = [];
    threads = new HashThreads({ logger: { warn: (...args: unknown[]) => warnings.push(args) } as never });
    const digests = new ArrivalDigests({ hashThreads: threads });
    const [first, second, after] = [randomBytes(4 * MiB), randomBytes(4 * MiB), randomBytes(3 * MiB)];
    digests.declareLength('first', first.length);
    digests.declareLength('second', second.length);
    await writeAwaiting(digests, 'first', 0, first.subarray(0, 2 * MiB));
    await writeAwaiting(digests, 'second', 0, second.subarray(0, 2 * MiB));
    // One more, dropped with its bytes still in flight: the dead thread's bytes are written off too.
    digests.declareLength('dropped', 4 * MiB);
    await writeAwaiting(digests, 'dropped', 0, randomBytes(2 * MiB));
    digests.drop('dropped');
    expect(threads.inFlightBytes).toBeGreaterThan(0);
    await threads.terminate();
    await writeAwaiting(digests, 'first', 2 * MiB, first.subarray(2 * MiB));
    await writeAwaiting(digests, 'second', 2 * MiB, second.subarray(2 * MiB));
    expect(await digests.take('first', first.length)).toBeNull();
    expect(await digests.take('second', second.length)).toBeNull();
    expect(warnings).toHaveLength(1);

    digests.declareLength('after', after.length);
    await writeAwaiting(digests, 'after', 0, after);
    expect(await digests.take('after', after.length)).toMatchObject({ sha256: hex('sha256', after), md5: hex('md5', after) });
    expect(threads.inFlightBytes).toBe(0);
  });
});
