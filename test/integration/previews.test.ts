// Previews through real uploads, real Postgres, both stores and (on S3) real clamd: an FSEQ's
// light map and brightness series, audio waveforms (FLAC, Ogg Opus, WAV; AAC in MP4 through
// Debian's ffmpeg, and its reason when FFMPEG_PATH=off), image thumbnails (a sideways JPEG comes
// out upright), made once per content, owner-checked, never for infected files, and a corrupt
// block or a truncated image leaving the file ready with the reason the preview is missing.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { pino } from 'pino';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { waitForFinal, type FileRecord } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { eicar } from '../support/clamd.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildFseqV2Frames } from '../support/fixture-builders.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, startServer, type StorageKind, type TestServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

interface PreviewList {
  previews: Array<{ name: string; kind: string; size: number; contentType: string }>;
  missing: Array<{ kind: string; reason: string }>;
}

/** 30 frames × 16 channels, all dark but frame `bright` (full) and a per-file marker channel. */
function sequence(bright: number, compression: 'zstd' | 'zlib' | 'none' = 'zstd'): Buffer {
  const marker = randomBytes(1)[0]! >> 1;
  const frames = Array.from({ length: 30 }, (_, f) => {
    const frame = new Uint8Array(16).fill(f === bright ? 255 : 0);
    frame[15] = marker; // distinct bytes per call: no de-duplication across tests
    return frame;
  });
  return buildFseqV2Frames({ frames, compression, framesPerBlock: 6 });
}

describe.each<{ storage: StorageKind; scanner: boolean }>([
  { storage: 'file', scanner: false },
  { storage: 's3', scanner: true },
])('previews with $storage storage (scanner: $scanner)', ({ storage, scanner }) => {
  let db: TestDatabase;
  let server: TestServer;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  const send = async (data: Buffer, filename: string, headers: Record<string, string>): Promise<FileRecord> => {
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, headers });
    return waitForFinal(server.url, id, { headers });
  };
  const api = (path: string, headers: Record<string, string>, extra: Record<string, string> = {}) =>
    fetch(`${server.url}/api/files/${path}`, { headers: { ...headers, ...extra } });
  const previewsOf = (id: string, headers: Record<string, string>) =>
    waitFor(
      async () => {
        const response = await api(`${id}/previews`, headers);
        const body = (await response.json()) as PreviewList;
        return body.previews.length + body.missing.length >= 2 ? body : null;
      },
      { what: `previews of ${id}` },
    );

  beforeAll(async () => {
    db = await createTestDatabase();
    const clamd: Record<string, string> = scanner ? { CLAMAV_HOST: inject('clamdHost'), CLAMAV_PORT: String(inject('clamdPort')) } : {};
    // No orphan grace: the sweep's dry run shows at once which objects it would remove.
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage, extra: { ...jwtEnv(), ...clamd, ORPHAN_GRACE: '0s' } }));
    alice = await bearer('alice');
    bob = await bearer('bob');
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('a ready FSEQ gets a light map whose size follows frames × channels and whose bright column is the bright frame', async () => {
    const record = await send(sequence(12), 'show.fseq', alice);
    expect(record.status).toBe('ready');
    const list = await previewsOf(record.id, alice);
    expect(list.missing).toEqual([]);
    expect(list.previews.map((p) => [p.name, p.contentType]).sort()).toEqual([
      ['brightness.json', 'application/json'],
      ['lightmap.png', 'image/png'],
    ]);

    const response = await api(`${record.id}/previews/lightmap.png`, alice);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('cache-control')).toBe('private, no-cache');
    const png = PNG.sync.read(Buffer.from(await response.arrayBuffer()));
    expect([png.width, png.height]).toEqual([30, 16]);
    const gray = (x: number, y: number) => png.data[(y * png.width + x) * 4];
    expect(gray(12, 3)).toBe(255);
    expect(gray(11, 3)).toBe(0);

    const etag = response.headers.get('etag')!;
    expect((await api(`${record.id}/previews/lightmap.png`, alice, { 'If-None-Match': etag })).status).toBe(304);

    const series = (await (await api(`${record.id}/previews/brightness.json`, alice)).json()) as { frames: number[]; brightness: number[] };
    expect(series.frames).toHaveLength(30);
    expect(series.brightness.indexOf(Math.max(...series.brightness))).toBe(12);
  });

  it('two owners uploading the same bytes: previews made once; another owner gets 404, exactly like a missing file', async () => {
    const data = sequence(3, 'zlib');
    const first = await send(data, 'a.fseq', alice);
    await previewsOf(first.id, alice);
    const second = await send(data, 'b.fseq', bob);
    const bobs = await previewsOf(second.id, bob);
    expect(bobs.previews).toHaveLength(2);
    const rows = await db.sql`select kind from previews where sha256 = ${sha256(data)}`;
    expect(rows.map((r) => r.kind).sort()).toEqual(['brightness', 'lightmap']);

    const missing = await api(`${'0'.repeat(32)}/previews`, bob);
    const foreign = await api(`${first.id}/previews`, bob);
    expect(foreign.status).toBe(404);
    expect(await foreign.json()).toEqual(await missing.json());
    expect((await api(`${first.id}/previews/lightmap.png`, bob)).status).toBe(404);
    expect((await api(`${first.id}/previews/nothing.png`, alice)).status).toBe(404);
  });

  it('a corrupt compressed block: the file stays ready, the record says why the previews are missing', async () => {
    const data = sequence(5);
    // Garbage over the second block's bytes: the header (and its size check) still holds.
    const secondBlock = data.readUInt16LE(4) + data.readUInt32LE(36); // channel data offset + block 0's length
    data.fill(0x5a, secondBlock + 2, secondBlock + 8);
    const record = await send(data, 'corrupt.fseq', alice);
    expect(record.status).toBe('ready');
    const list = await previewsOf(record.id, alice);
    expect(list.previews).toEqual([]);
    expect(list.missing.map((m) => m.kind).sort()).toEqual(['brightness', 'lightmap']);
    expect(list.missing[0]!.reason).toMatch(/block 1 cannot be decompressed/);
  });

  it('documents both routes, with their schemas, in a valid OpenAPI document', async () => {
    const document = (await (await fetch(`${server.url}/docs/json`)).json()) as {
      paths: Record<string, { get?: { responses: Record<string, unknown> } }>;
      components: { schemas: Record<string, unknown> };
    };
    await SwaggerParser.validate(structuredClone(document) as never);
    expect(Object.keys(document.paths['/api/files/{id}/previews']!.get!.responses).sort()).toEqual(['200', '400', '401', '404', '409']);
    expect(document.paths['/api/files/{id}/previews/{name}']!.get!.responses).toHaveProperty('304');
    expect(document.components.schemas).toHaveProperty('PreviewList');
  });

  it('audio gets waveform peaks (audiowaveform JSON) and a PNG; AAC in MP4 through ffmpeg; undecodable audio says why', async () => {
    const song = await send(await readFile('/work/shared/fixtures/audio/mm_flac.flac'), 'song.flac', alice);
    expect(song.status).toBe('ready');
    const list = await previewsOf(song.id, alice);
    expect(list.previews.map((p) => p.name).sort()).toEqual(['peaks.json', 'waveform.png']);
    const peaks = (await (await api(`${song.id}/previews/peaks.json`, alice)).json()) as { version: number; length: number; data: number[] };
    expect(peaks.version).toBe(2);
    expect(peaks.data).toHaveLength(peaks.length * 2);
    const png = PNG.sync.read(Buffer.from(await (await api(`${song.id}/previews/waveform.png`, alice)).arrayBuffer()));
    expect(png.width).toBe(peaks.length);

    // An Apple voice memo: AAC with its index after the samples (ffmpeg reads a temporary copy).
    const memo = await send(await readFile('/work/shared/fixtures/audio/mm_Apple__voice_memo.m4a'), 'memo.m4a', alice);
    expect(memo.status).toBe('ready');
    const memoList = await previewsOf(memo.id, alice);
    expect(memoList.missing).toEqual([]);
    expect(memoList.previews.map((p) => [p.name, p.contentType]).sort()).toEqual([
      ['peaks.json', 'application/json'],
      ['waveform.png', 'image/png'],
    ]);
    const memoPeaks = (await (await api(`${memo.id}/previews/peaks.json`, alice)).json()) as { sample_rate: number; length: number; data: number[] };
    expect(memoPeaks.sample_rate).toBe(48000);
    expect(memoPeaks.length).toBeGreaterThan(970);
    expect(Math.max(...memoPeaks.data)).toBeGreaterThan(0);
    const memoPng = await api(`${memo.id}/previews/waveform.png`, alice);
    expect(memoPng.status).toBe(200);
    expect(PNG.sync.read(Buffer.from(await memoPng.arrayBuffer())).width).toBe(memoPeaks.length);

    // Its sample table points past the end of the file: ready, with ffmpeg's reason for no waveform.
    const cut = await send(await readFile('/work/shared/fixtures/audio/mm_issue-318.m4a'), 'cut.m4a', alice);
    expect(cut.status).toBe('ready');
    const missing = await previewsOf(cut.id, alice);
    expect(missing.previews).toEqual([]);
    expect(missing.missing.map((m) => m.kind).sort()).toEqual(['peaks', 'waveform']);
    expect(missing.missing[0]!.reason).toMatch(/^ffmpeg cannot decode the m4a audio .*partial file/);
  });

  it('a JPEG stored sideways (EXIF orientation 6): upright metadata and WebP thumbnails, never upscaled', async () => {
    // Stored 1600×400, shown 400×1600; noise makes each run's bytes new and the file larger than
    // the first bytes the digest pass keeps (its metadata comes from the metadata job).
    const jpeg = await sharp({ create: { width: 1600, height: 400, channels: 3, background: { r: 200, g: 100, b: 10 } } })
      .composite([{ input: randomBytes(800 * 300 * 3), raw: { width: 800, height: 300, channels: 3 }, left: 0, top: 0 }])
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect(jpeg.length).toBeGreaterThan(64 * 1024);
    const record = await send(jpeg, 'photo.jpg', alice);
    expect(record.status).toBe('ready');
    expect(record.metadata).toEqual({ width: 400, height: 1600, format: 'jpeg', orientation: 6, hasAlpha: false });
    const list = await previewsOf(record.id, alice);
    expect(list.missing).toEqual([]);
    expect(list.previews.map((p) => [p.name, p.contentType]).sort()).toEqual([
      ['thumbnail-1024.webp', 'image/webp'],
      ['thumbnail-256.webp', 'image/webp'],
    ]);
    const sizes: number[][] = [];
    for (const name of ['thumbnail-256.webp', 'thumbnail-1024.webp']) {
      const response = await api(`${record.id}/previews/${name}`, alice);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/webp');
      const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
      expect(meta.format).toBe('webp');
      expect(meta.exif).toBeUndefined();
      sizes.push([meta.width, meta.height]);
    }
    expect(sizes).toEqual([
      [64, 256],
      [256, 1024],
    ]);
  });

  it('a truncated PNG: the file stays ready with its metadata, the thumbnails are missing with the reason', async () => {
    // Small enough to settle from its first bytes, inline.
    const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 1, g: 2, b: randomBytes(1)[0]! } } })
      .composite([{ input: randomBytes(120 * 80 * 3), raw: { width: 120, height: 80, channels: 3 }, left: 10, top: 10 }])
      .png()
      .toBuffer();
    const record = await send(png.subarray(0, Math.floor(png.length * 0.6)), 'cut.png', alice);
    expect(record.status).toBe('ready');
    expect(record.metadata).toMatchObject({ width: 300, height: 200, format: 'png' });
    const list = await previewsOf(record.id, alice);
    expect(list.previews).toEqual([]);
    expect(list.missing.map((m) => m.kind).sort()).toEqual(['thumbnail-1024', 'thumbnail-256']);
    expect(list.missing[0]!.reason).toMatch(/^the image cannot be decoded/);
  });

  it('Ogg Opus and WAV get waveform peaks too', async () => {
    for (const [fixture, filename, sampleRate] of [
      ['mm_nirvana-2sec.opus.ogg', 'song.opus', 48000],
      ['mm_riff_adobe_audition.wav', 'take.wav', 48000],
    ] as const) {
      const record = await send(await readFile(`/work/shared/fixtures/audio/${fixture}`), filename, alice);
      expect(record.status).toBe('ready');
      const list = await previewsOf(record.id, alice);
      expect(list.missing).toEqual([]);
      expect(list.previews.map((p) => p.name).sort()).toEqual(['peaks.json', 'waveform.png']);
      const peaks = (await (await api(`${record.id}/previews/peaks.json`, alice)).json()) as { sample_rate: number; length: number; data: number[] };
      expect(peaks.sample_rate).toBe(sampleRate);
      expect(peaks.length).toBeGreaterThan(900);
      expect(Math.max(...peaks.data)).toBeGreaterThan(0);
    }
  });

  it('a file that is not ready answers 409 like a download', async () => {
    const created = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...alice, 'Tus-Resumable': '1.0.0', 'Upload-Length': '100', 'Upload-Metadata': `filename ${Buffer.from('x.fseq').toString('base64')}` },
    });
    const id = new URL(created.headers.get('location')!, server.url).pathname.split('/').pop()!;
    const response = await api(`${id}/previews`, alice);
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('FILE_NOT_READY');
  });

  if (scanner) it('an infected FSEQ gets no previews', async () => {
    // Uncompressed frames that carry the test signature: a valid FSEQ clamd flags.
    const signature = eicar();
    const frames = Array.from({ length: 4 }, () => Uint8Array.from(signature));
    const data = buildFseqV2Frames({ frames, compression: 'none' });
    const record = await send(data, 'infected.fseq', alice);
    expect(record.status).toBe('infected');
    // The scan job enqueues previews after finalizing; wait until it has finished.
    await waitFor(async () => (await db.sql`select 1 from graphile_worker.jobs where key = ${'scan:' + sha256(data)}`).length === 0, {
      what: 'the scan job to finish',
    });
    expect(await db.sql`select 1 from graphile_worker.jobs where key = ${'previews:' + sha256(data)}`).toHaveLength(0);
    expect(await db.sql`select 1 from previews where sha256 = ${sha256(data)}`).toHaveLength(0);
    expect((await api(`${record.id}/previews`, alice)).status).toBe(409);
  });

  it('the orphan sweep keeps a blob\'s previews and removes them once the blob is gone', async () => {
    const admin = await bearer('root', { role: 'admin' });
    const sweep = async () => {
      const response = await fetch(`${server.url}/api/admin/uploads/cleanup`, {
        method: 'POST',
        headers: { ...admin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ dryRun: true }),
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as { orphans: { ids: string[] } }).orphans.ids;
    };
    const data = sequence(7);
    const record = await send(data, 'gone.fseq', alice);
    await previewsOf(record.id, alice);
    const keys = (await db.sql`select storage_key from previews where sha256 = ${sha256(data)}`).map((r) => r.storage_key as string);
    expect(keys).toHaveLength(2);
    expect(await sweep()).not.toEqual(expect.arrayContaining([keys[0]]));
    expect((await fetch(`${server.url}/api/files/${record.id}`, { method: 'DELETE', headers: alice })).status).toBe(204);
    expect(await db.sql`select 1 from previews where sha256 = ${sha256(data)}`).toHaveLength(0);
    expect(await sweep()).toEqual(expect.arrayContaining(keys));
  });
});

describe('previews with FFMPEG_PATH=off', () => {
  let db: TestDatabase;
  let server: TestServer;
  const logLines: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { ...jwtEnv(), FFMPEG_PATH: 'off' } }), logger);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('AAC in MP4 is ready without a waveform, and the record says ffmpeg is turned off', async () => {
    const alice = await bearer('alice');
    const id = await upload(await readFile('/work/shared/fixtures/audio/mm_Apple__voice_memo.m4a'), { endpoint: `${server.url}/files`, filename: 'memo.m4a', headers: alice });
    const record = await waitForFinal(server.url, id, { headers: alice });
    expect(record.status).toBe('ready');
    const list = await waitFor(
      async () => {
        const body = (await (await fetch(`${server.url}/api/files/${id}/previews`, { headers: alice })).json()) as PreviewList;
        return body.missing.length >= 2 ? body : null;
      },
      { what: 'the missing previews' },
    );
    expect(list.previews).toEqual([]);
    expect(list.missing.map((m) => [m.kind, m.reason]).sort()).toEqual([
      ['peaks', 'no waveform decoder for m4a audio (ffmpeg is turned off: FFMPEG_PATH=off)'],
      ['waveform', 'no waveform decoder for m4a audio (ffmpeg is turned off: FFMPEG_PATH=off)'],
    ]);
    // The worker said so once, at start.
    expect(logLines.filter((line) => line.includes('FFMPEG_PATH=off: AAC / ALAC audio gets no waveform preview'))).toHaveLength(1);
  });
});
