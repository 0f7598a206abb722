// Previews through real uploads, real Postgres, both stores and (on S3) real clamd: an FSEQ's
// light map and brightness series, made once per content, owner-checked, never for infected
// files, and a corrupt block leaving the file ready with the reason the preview is missing.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { PNG } from 'pngjs';
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

  it('audio gets waveform peaks (audiowaveform JSON) and a PNG; a format without a decoder says so', async () => {
    const song = await send(await readFile('/work/shared/fixtures/audio/mm_flac.flac'), 'song.flac', alice);
    expect(song.status).toBe('ready');
    const list = await previewsOf(song.id, alice);
    expect(list.previews.map((p) => p.name).sort()).toEqual(['peaks.json', 'waveform.png']);
    const peaks = (await (await api(`${song.id}/previews/peaks.json`, alice)).json()) as { version: number; length: number; data: number[] };
    expect(peaks.version).toBe(2);
    expect(peaks.data).toHaveLength(peaks.length * 2);
    const png = PNG.sync.read(Buffer.from(await (await api(`${song.id}/previews/waveform.png`, alice)).arrayBuffer()));
    expect(png.width).toBe(peaks.length);

    const memo = await send(await readFile('/work/shared/fixtures/audio/mm_Apple__voice_memo.m4a'), 'memo.m4a', alice);
    expect(memo.status).toBe('ready');
    const missing = await previewsOf(memo.id, alice);
    expect(missing.previews).toEqual([]);
    expect(missing.missing[0]!.reason).toMatch(/no waveform decoder for m4a audio/);
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
