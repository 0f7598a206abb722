// The durable file sink on a real filesystem: bodies arriving in odd-sized pieces land byte-exact
// at their offsets, many sinks at once (reusing each other's buffers) never mix bytes, and a body
// that breaks off still has what arrived written.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DurableFileSink, fileSinkBufferCounts } from '../../src/storage/file-sink.js';

/** `data` as a stream of pieces of varying sizes (1 byte to ~300 KiB), yielding between them. */
function pieces(data: Buffer, seed: number): Readable {
  let at = 0;
  let state = seed;
  return new Readable({
    read() {
      if (at >= data.length) return void this.push(null);
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      const size = 1 + (state % (300 * 1024));
      const piece = data.subarray(at, at + size);
      at += piece.length;
      setImmediate(() => this.push(piece));
    },
  });
}

/**
 * `data` as a socket delivers a fast upload: 64 KiB reads, so buffers fill exactly at a read's
 * end, with a millisecond between reads, so the disk has answered before the next one comes.
 */
function socketReads(data: Buffer): Readable {
  let at = 0;
  return new Readable({
    read() {
      const piece = data.subarray(at, at + 64 * 1024);
      at += piece.length;
      setTimeout(() => this.push(piece.length > 0 ? piece : null), 1);
    },
  });
}

describe('durable file sink', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tusvault-sink-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes twelve concurrent bodies, in chunks at offsets, byte-exact while sharing buffers', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ file: path.join(dir, `f${i}`), data: randomBytes(3 * 1024 * 1024 + i * 77_777) }));
    await Promise.all(files.map(({ file }) => writeFile(file, '')));
    // Three PATCHes per file (as a chunked upload sends them), all files at once, twice over so
    // that later sinks run on buffers that earlier ones gave back.
    for (let round = 0; round < 2; round++) {
      await Promise.all(
        files.map(async ({ file, data }, i) => {
          const cuts = [0, 1_000_001, 2_500_000, data.length];
          for (let c = 0; c < 3; c++) {
            const sink = new DurableFileSink(file, cuts[c]!);
            await pipeline(pieces(data.subarray(cuts[c], cuts[c + 1]), i * 31 + c + round), sink);
            expect(sink.bytesWritten).toBe(cuts[c + 1]! - cuts[c]!);
          }
        }),
      );
      for (const { file, data } of files) expect((await readFile(file)).equals(data)).toBe(true);
      await Promise.all(files.map(({ file }) => writeFile(file, '')));
    }
  });

  it('works a long body with at most three buffers, however fast the disk answers', async () => {
    // A written buffer must come back for the next fill. It once replaced the spare instead when
    // the write returned before the next chunk came, dropping a buffer every few MiB: 100 MiB of
    // 1 MiB buffers per 2 GiB, and with the pool holding them, peak RSS 236-326 MiB in the bench.
    const file = path.join(dir, 'long');
    await writeFile(file, '');
    const data = randomBytes(24 * 1024 * 1024);
    const before = fileSinkBufferCounts();
    const sink = new DurableFileSink(file, 0);
    await pipeline(socketReads(data), sink);
    const after = fileSinkBufferCounts();
    expect(sink.bytesWritten).toBe(data.length);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(after.taken - before.taken).toBeGreaterThanOrEqual(2);
    expect(after.taken - before.taken).toBeLessThanOrEqual(3);
  });

  it('keeps what arrived when the body breaks off', async () => {
    const file = path.join(dir, 'broken');
    await writeFile(file, '');
    const data = randomBytes(2 * 1024 * 1024 + 5000);
    const sent = 1_500_000;
    const body = new Readable({ read() {} });
    const sink = new DurableFileSink(file, 0);
    const done = pipeline(body, sink);
    body.push(data.subarray(0, 700_000));
    body.push(data.subarray(700_000, sent));
    await new Promise((resolve) => setTimeout(resolve, 50));
    body.destroy(new Error('connection reset'));
    await expect(done).rejects.toThrow('connection reset');
    await new Promise((resolve) => sink.once('close', resolve));
    expect(sink.bytesWritten).toBe(sent);
    expect((await readFile(file)).equals(data.subarray(0, sent))).toBe(true);
  });
});
