// The processing pipeline through real uploads, real Postgres and both stores: type policy,
// magic bytes, FSEQ / XSQ / audio metadata, invalid content rejected with a precise reason, and
// content de-duplication (also when identical uploads finish at the same instant).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal, type FileRecord } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildFseqV1, buildFseqV2, buildPng, buildXmlBomb, buildXsq } from '../support/fixture-builders.js';
import { ROOT, serverEnv, startServer, type StorageKind, type TestServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

const fixture = (name: string) => readFile(path.join(ROOT, 'test/fixtures', name));

describe.each<StorageKind>(['file', 's3'])('processing pipeline with %s storage', (storage) => {
  let db: TestDatabase;
  let server: TestServer;
  const send = async (data: Buffer, filename: string, filetype?: string): Promise<FileRecord> => {
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, ...(filetype ? { filetype } : {}) });
    return waitForFinal(server.url, id);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage }));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  describe('type policy at creation', () => {
    const create = (filename: string, length: number, filetype?: string) =>
      fetch(`${server.url}/files`, {
        method: 'POST',
        headers: {
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(length),
          'Upload-Metadata': [
            `filename ${Buffer.from(filename).toString('base64')}`,
            ...(filetype ? [`filetype ${Buffer.from(filetype).toString('base64')}`] : []),
          ].join(','),
        },
      });

    it('refuses a kind over its size limit before any byte is stored, naming the rule', async () => {
      const response = await create('huge.png', 10_000_001);
      expect(response.status).toBe(413);
      const body = (await response.json()) as { error: Record<string, unknown> };
      expect(body.error).toMatchObject({ code: 'FILE_TOO_LARGE', kind: 'image', limit: 10_000_000, requested: 10_000_001 });
      expect(body.error.message).toMatch(/image files may be at most/);
    });

    it('refuses a declared MIME type that contradicts the extension', async () => {
      const response = await create('song.mp3', 1000, 'image/png');
      expect(response.status).toBe(415);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('MIME_TYPE_MISMATCH');
    });

    it('refuses control characters in the filename and keeps only the last path component', async () => {
      const bad = await create('evil\r\nname.fseq', 10);
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_FILENAME');
      const record = await send(await fixture('fseq/v1.0_novh_nkaminski_testseq.fseq'), '../../etc/passwd/../show.fseq');
      expect(record.filename).toBe('show.fseq');
    });
  });

  it('extracts metadata from the real v1 FSEQ files', async () => {
    const record = await send(await fixture('fseq/v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq'), 'merry.fseq');
    expect(record.status).toBe('ready');
    expect(record.kind).toBe('fseq');
    expect(record.metadata).toMatchObject({
      version: '1.0',
      majorVersion: 1,
      minorVersion: 0,
      channelCount: 20,
      frameCount: 4744,
      stepTimeMs: 50,
      fps: 20,
      durationMs: 237_200,
      compression: 'none',
      mediaFile: 'BBK_Merry_Christmas_Baby.ogg',
      producer: null,
      channelDataOffset: 108,
    });
    expect(record.metadata!.variableHeaders).toEqual([expect.objectContaining({ code: 'mf' })]);
  });

  it('reads a v2.1 zstd FSEQ with more than 255 blocks, sparse ranges and an ED header', async () => {
    const data = buildFseqV2({
      channels: 600,
      frames: 3000,
      stepMs: 25,
      compression: 'zstd',
      blocks: 300,
      sparseRanges: [
        { start: 0, count: 512 },
        { start: 1024, count: 88 },
      ],
      variableHeaders: [
        { code: 'mf', value: 'C:\\Shows\\Audio\\Jingle Bells.mp3' },
        { code: 'sp', value: 'xLights 2026.1' },
      ],
      extendedData: [{ code: 'XR', payload: randomBytes(100) }],
      uniqueId: 123456789012345678n,
    });
    const record = await send(data, 'jingle.fseq');
    expect(record.status).toBe('ready');
    expect(record.metadata).toMatchObject({
      majorVersion: 2,
      compression: 'zstd',
      blockCount: 300,
      channelCount: 600,
      frameCount: 3000,
      fps: 40,
      durationMs: 75_000,
      sparseRanges: [
        { start: 0, count: 512 },
        { start: 1024, count: 88 },
      ],
      mediaFile: 'Jingle Bells.mp3',
      producer: 'xLights 2026.1',
      uniqueId: '123456789012345678',
    });
    expect(record.metadata!.extendedData).toEqual([expect.objectContaining({ code: 'XR', length: 100 })]);
  });

  it('rejects a truncated FSEQ with the expected and actual sizes', async () => {
    const full = buildFseqV1({ channels: 64, frames: 100, stepMs: 50 });
    const record = await send(full.subarray(0, full.length - 100), 'cut.fseq');
    expect(record.status).toBe('rejected');
    expect(record.rejectionReason).toMatch(/truncated|shorter/i);
    expect(record.rejectionReason).toContain(String(full.length));
  });

  it('rejects an FSEQ whose header lies about its size', async () => {
    const data = Buffer.concat([buildFseqV1({ channels: 8, frames: 10, stepMs: 50 }), randomBytes(4096)]);
    const record = await send(data, 'liar.fseq');
    expect(record.status).toBe('rejected');
    expect(record.rejectionReason).toContain("4204 bytes, 4096 more than the 108 bytes its header describes");
  });

  it('rejects a PNG renamed .fseq by its magic bytes', async () => {
    const record = await send(buildPng(), 'sneaky.fseq');
    expect(record.status).toBe('rejected');
    expect(record.rejectionReason).toBe('the content is PNG data, not a fseq file');
    expect(record.sha256).toBe(sha256(buildPng()));
    expect(record.scan.status).toBe('skipped');
  });

  it('counts models, timing tracks and effects of an XSQ in every placement', async () => {
    const { xml, expected } = buildXsq({ models: 4, timingTracks: 2, effectsPerLayer: 3 });
    const record = await send(Buffer.from(xml), 'show.xsq');
    expect(record.status).toBe('ready');
    expect(record.kind).toBe('xsq');
    expect(record.metadata).toMatchObject({ ...expected });
  });

  it('rejects an XML bomb and XML that is not an xLights sequence', async () => {
    const bomb = await send(Buffer.from(buildXmlBomb()), 'bomb.xsq');
    expect(bomb.status).toBe('rejected');
    expect(bomb.rejectionReason).toMatch(/DOCTYPE/i);
    const other = await send(Buffer.from('<?xml version="1.0"?><rss><channel/></rss>'), 'feed.xml');
    expect(other.status).toBe('rejected');
    expect(other.rejectionReason).toMatch(/rss/);
  });

  it('extracts audio metadata with music-metadata, streamed from storage', async () => {
    const mp3 = await send(await fixture('audio/mm_id3v2.3.mp3'), 'home.mp3', 'audio/mpeg');
    expect(mp3.status).toBe('ready');
    expect(mp3.metadata).toMatchObject({ sampleRate: 44100, channels: 2, bitrate: 128000, title: 'Home' });
    const flac = await send(await fixture('audio/mm_04_Long_Drive.flac'), 'drive.flac');
    expect(flac.metadata).toMatchObject({ title: 'Long Drive', artist: 'Jason Mraz', lossless: true });
    const m4a = await send(await fixture('audio/mm_issue-318.m4a'), 'garbage-tail.m4a');
    expect(m4a.status).toBe('ready');
    expect((m4a.metadata!.warnings as string[]).length).toBeGreaterThan(0);
  });

  it('rejects audio that music-metadata cannot parse', async () => {
    const record = await send(Buffer.concat([Buffer.from('ID3'), randomBytes(2000)]), 'noise.mp3');
    expect(record.status).toBe('rejected');
  });

  it('de-duplicates identical bytes: one blob, one stored copy, both ready, metadata reused', async () => {
    const data = await fixture('fseq/v1.0_novh_nkaminski_testseq.fseq');
    const unique = Buffer.concat([data.subarray(0, data.length)]);
    const first = await send(unique, 'first.fseq');
    const second = await send(unique, 'second.fseq');
    expect(first.status).toBe('ready');
    expect(second.status).toBe('ready');
    expect(second.deduplicated).toBe(true);
    expect(second.metadata).toEqual(first.metadata);
    const blobs = await db.sql<{ ref_count: number; storage_key: string }[]>`
      select ref_count, storage_key from blobs where sha256 = ${first.sha256}`;
    expect(blobs).toHaveLength(1);
    expect(Number(blobs[0]!.ref_count)).toBeGreaterThanOrEqual(2);
    // The duplicate's own stored copy is gone.
    const [secondRow] = await db.sql<{ storage_key: string | null }[]>`select storage_key from uploads where id = ${second.id}`;
    expect(secondRow!.storage_key).toBeNull();
  });

  it('ends with exactly one blob when identical uploads finish at the same instant', async () => {
    const data = randomBytes(256 * 1024);
    const ids = await Promise.all(
      Array.from({ length: 6 }, (_, i) => upload(data, { endpoint: `${server.url}/files`, filename: `same-${i}.bin` })),
    );
    const records = await Promise.all(ids.map((id) => waitForFinal(server.url, id)));
    expect(records.every((r) => r.status === 'ready' && r.sha256 === sha256(data))).toBe(true);
    expect(records.filter((r) => !r.deduplicated)).toHaveLength(1);
    const blobs = await db.sql<{ ref_count: number; storage_key: string }[]>`
      select ref_count, storage_key from blobs where sha256 = ${sha256(data)}`;
    expect(blobs).toHaveLength(1);
    expect(Number(blobs[0]!.ref_count)).toBe(6);
    const owners = await db.sql`select id from uploads where sha256 = ${sha256(data)} and storage_key is not null`;
    expect(owners).toHaveLength(0);
    // Finalized together (one statement per blob): each file counted once in its owner's quota,
    // and one audit entry each. The owner's counters equal what its uploads say.
    const ready = await db.sql<{ n: number }[]>`
      select count(*)::int as n from audit_log where action = 'UPLOAD_READY' and upload_id = any(${ids})`;
    expect(ready[0]!.n).toBe(6);
    const drift = await db.sql`
      select o.id, o.used_bytes, o.file_count, o.reserved_bytes, u.used, u.files, u.reserved
      from owners o
      join (select owner_id,
                   coalesce(sum(size) filter (where quota_state = 'committed'), 0) as used,
                   count(*) filter (where quota_state = 'committed') as files,
                   coalesce(sum(reserved_bytes) filter (where quota_state = 'reserved'), 0) as reserved
            from uploads group by owner_id) u on u.owner_id = o.id
      where o.used_bytes <> u.used or o.file_count <> u.files or o.reserved_bytes <> u.reserved`;
    expect(drift).toEqual([]);
  });
});
