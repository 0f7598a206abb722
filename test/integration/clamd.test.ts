// The clamd Scanner on its own, against a real clamd (and, for what a real clamd will not do on
// demand, a socket that never answers and one that reads slowly): verdicts over TCP and the Unix
// socket, empty input, the stream limit known up front or learned from clamd's refusal, clamd
// unreachable or silent, and that a file is streamed with backpressure rather than buffered.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClamdScanner } from '../../src/scan/clamd.js';
import { ScannerUnavailableError, UnscannableError, type Scanner } from '../../src/scan/scanner.js';
import { CLAMAV_TESTFILES, eicar, SIGNATURES, startClamd, type Clamd } from '../support/clamd.js';
import { freePort } from '../support/ports.js';

const MiB = 1024 * 1024;
const scanBuffer = (scanner: Scanner, data: Buffer) => scanner.scan(Readable.from([data]), data.length);

let small: Clamd; // StreamMaxLength 1M
let dir: string;
beforeAll(async () => {
  small = await startClamd({ streamMaxLength: '1M' });
  dir = await mkdtemp(path.join(os.tmpdir(), 'tv-clamd-test-'));
});
afterAll(async () => {
  await small?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each([
  ['TCP', () => ({ host: inject('clamdHost'), port: inject('clamdPort') })],
  ['Unix socket', () => ({ socket: inject('clamdSocket') })],
])('clamd scanner over %s', (_label, where) => {
  let scanner: Scanner;
  beforeAll(() => {
    scanner = createClamdScanner({ ...where(), timeoutMs: 10_000 });
  });

  it('answers PING', async () => {
    await expect(scanner.ping()).resolves.toBeUndefined();
  });

  it('finds EICAR anywhere in a file and names the signature', async () => {
    const data = Buffer.concat([Buffer.alloc(200_000, 'a'), eicar(), Buffer.from('\ntrailing text\n')]);
    await expect(scanBuffer(scanner, data)).resolves.toEqual({ status: 'infected', signature: SIGNATURES.eicar });
  });

  it.each(['clam.exe', 'clam.zip', 'clam.7z', 'clam.tar.gz', 'clam-upx.exe', 'clam.exe.mbox.base64'])(
    'finds the test virus in clamav-testfiles %s',
    async (name) => {
      const file = path.join(CLAMAV_TESTFILES, name);
      await expect(scanner.scan(createReadStream(file), (await stat(file)).size)).resolves.toEqual({
        status: 'infected',
        signature: SIGNATURES.clamTestFile,
      });
    },
  );

  it('says clean for clean bytes, an empty file included', async () => {
    await expect(scanBuffer(scanner, Buffer.from('nothing to see here\n'))).resolves.toEqual({ status: 'clean', signature: null });
    await expect(scanBuffer(scanner, Buffer.alloc(0))).resolves.toEqual({ status: 'clean', signature: null });
  });

  it('streams a file of 20 MiB from disk', async () => {
    const file = path.join(dir, `big-${_label.replace(/\W/g, '')}.bin`);
    await writeFile(file, Buffer.alloc(20 * MiB, 7));
    await expect(scanner.scan(createReadStream(file), 20 * MiB)).resolves.toEqual({ status: 'clean', signature: null });
  });
});

describe('the stream limit', () => {
  it('refuses a file over a known limit without connecting, and destroys its stream', async () => {
    // Nothing listens at this port: a connection attempt would fail with ScannerUnavailableError.
    const scanner = createClamdScanner({ host: '127.0.0.1', port: await freePort(), timeoutMs: 2000, maxStreamBytes: MiB });
    const stream = Readable.from([Buffer.alloc(10)]);
    const error = await scanner.scan(stream, MiB + 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnscannableError);
    expect((error as Error).message).toMatch(/larger than the virus scanner accepts \(StreamMaxLength is 1\.0 MiB\).*CLAMAV_STREAM_MAX_LENGTH/);
    expect(stream.destroyed).toBe(true);
  });

  it.each([
    ['TCP', () => ({ host: small.host, port: small.port })],
    ['Unix socket', () => ({ socket: small.socket })],
  ])("reports clamd's own refusal clearly over %s, every time", async (_label, where) => {
    const scanner = createClamdScanner({ ...where(), timeoutMs: 10_000 });
    const data = Buffer.alloc(Math.round(1.5 * MiB), 1);
    const outcomes: string[] = [];
    for (let i = 0; i < 30; i++) {
      const error = await scanBuffer(scanner, data).catch((e: unknown) => e as Error);
      outcomes.push(error instanceof UnscannableError ? 'unscannable' : `${(error as Error)?.name}: ${(error as Error)?.message}`);
    }
    // clamd answers and closes while we are still sending; the answer must not be lost to the
    // broken pipe that follows. Reading between chunks catches it nearly always on a quiet machine
    // (600 of 600); under CI load the race is lost more often (24 of 30 seen), so the bar is the
    // majority, and every loss must be the retryable error that says what to do.
    expect(outcomes.filter((o) => o === 'unscannable').length).toBeGreaterThanOrEqual(20);
    for (const other of outcomes.filter((o) => o !== 'unscannable')) expect(other).toMatch(/CLAMAV_STREAM_MAX_LENGTH/);
    const error = await scanBuffer(scanner, data).catch((e: unknown) => e as Error);
    if (error instanceof UnscannableError) expect(error.message).toMatch(/INSTREAM size limit exceeded/);
  });

  it('still scans a file just under the limit', async () => {
    const scanner = createClamdScanner({ socket: small.socket, timeoutMs: 10_000, maxStreamBytes: MiB });
    await expect(scanBuffer(scanner, Buffer.concat([Buffer.alloc(MiB - 200), eicar()]))).resolves.toMatchObject({ status: 'infected' });
  });
});

describe('clamd unreachable or stuck', () => {
  it('fails with ScannerUnavailableError when nothing listens, and destroys the stream', async () => {
    const scanner = createClamdScanner({ host: '127.0.0.1', port: await freePort(), timeoutMs: 2000 });
    const stream = Readable.from([Buffer.from('x')]);
    const error = await scanner.scan(stream, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScannerUnavailableError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    expect(stream.destroyed).toBe(true);
    await expect(scanner.ping()).rejects.toBeInstanceOf(ScannerUnavailableError);
  });

  it('fails with ScannerUnavailableError when the socket does not exist', async () => {
    const scanner = createClamdScanner({ socket: path.join(dir, 'missing.sock'), timeoutMs: 2000 });
    await expect(scanBuffer(scanner, Buffer.from('x'))).rejects.toThrow(/ENOENT/);
  });

  it('gives up after the timeout when clamd accepts but never answers', async () => {
    const silent = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const scanner = createClamdScanner({ host: '127.0.0.1', port, timeoutMs: 500 });
      const started = Date.now();
      const error = await scanBuffer(scanner, Buffer.from('x')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ScannerUnavailableError);
      expect((error as Error).message).toMatch(/no progress for 500 ms/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      silent.close();
    }
  });
});

it('reads the file no faster than clamd takes it (backpressure, not buffering)', async () => {
  // A clamd stand-in on a Unix socket (small, fixed kernel buffers) that reads what it has every
  // 5 ms (some 10 MiB/s) and then answers OK.
  const size = 8 * MiB;
  let received = 0;
  const slow = net.createServer((socket) => {
    socket.pause();
    const timer = setInterval(() => {
      let chunk: Buffer | null;
      let taken = 0;
      while (taken < MiB && (chunk = socket.read() as Buffer | null) !== null) taken += chunk.length;
      received += taken;
      if (received >= size + 10 + 4) {
        clearInterval(timer);
        socket.end('stream: OK\0');
      }
    }, 5);
    socket.on('close', () => clearInterval(timer));
  });
  const socketPath = path.join(dir, 'slow.sock');
  await new Promise<void>((resolve) => slow.listen(socketPath, resolve));
  try {
    let produced = 0;
    let maxAhead = 0;
    // A source that could deliver everything at once, counting how far it runs ahead of clamd.
    const source = new Readable({
      read() {
        if (produced >= size) return void this.push(null);
        produced += 64 * 1024;
        maxAhead = Math.max(maxAhead, produced - received);
        this.push(Buffer.alloc(64 * 1024));
      },
    });
    const scanner = createClamdScanner({ socket: socketPath, timeoutMs: 5000 });
    await expect(scanner.scan(source, size)).resolves.toEqual({ status: 'clean', signature: null });
    // Socket buffers and the streams' own buffers hold a little, never the file.
    expect(maxAhead).toBeLessThan(2 * MiB);
  } finally {
    slow.close();
  }
}, 30_000);
