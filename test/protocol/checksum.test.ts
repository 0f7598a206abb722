// tus 1.0.0 checksum extension (and checksum-trailer), on both stores: a chunk is stored only if
// its digest matches; otherwise 460 and the upload and its offset do not move.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import type { StorageKind } from '../support/server.js';
import { idOf, sha256 } from '../support/tus.js';
import { errorCode, OCTET, TUS, useTusServer } from './support.js';

function checksum(algorithm: string, data: Buffer): string {
  if (algorithm === 'crc32') {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(crc32(data) >>> 0);
    return `crc32 ${out.toString('base64')}`;
  }
  return `${algorithm} ${createHash(algorithm).update(data).digest('base64')}`;
}

describe.each<StorageKind>(['file', 's3'])('checksum with %s storage', (storage) => {
  const tus = useTusServer(storage);

  it.each(['sha1', 'md5', 'sha256', 'sha512', 'crc32'])('stores a chunk whose %s matches', async (algorithm) => {
    const data = randomBytes(100_000);
    const url = (await tus.create(data.length)).headers.get('location')!;
    const response = await tus.patch(url, 0, data, { 'Upload-Checksum': checksum(algorithm, data) });
    expect(response.status).toBe(204);
    expect(response.headers.get('upload-offset')).toBe(String(data.length));
    const record = await waitForFinal(tus.server.url, idOf(url));
    expect(record.sha256).toBe(sha256(data));
  });

  it('answers a mismatch with 460, keeps the offset, and accepts the right bytes afterwards', async () => {
    const data = Buffer.from('hello world');
    const url = (await tus.create(data.length)).headers.get('location')!;
    expect((await tus.patch(url, 0, data.subarray(0, 5), { 'Upload-Checksum': checksum('sha1', data.subarray(0, 5)) })).status).toBe(204);
    const corrupted = Buffer.from(' w0rld');
    const response = await tus.patch(url, 5, corrupted, { 'Upload-Checksum': checksum('sha1', data.subarray(5)) });
    expect(response.status).toBe(460);
    expect(await errorCode(response)).toBe('CHECKSUM_MISMATCH');
    expect((await tus.head(url)).headers.get('upload-offset')).toBe('5');
    expect((await tus.patch(url, 5, data.subarray(5), { 'Upload-Checksum': checksum('sha1', data.subarray(5)) })).status).toBe(204);
    expect((await waitForFinal(tus.server.url, idOf(url))).sha256).toBe(sha256(data));
  });

  it.each([
    ['an unsupported algorithm', 'whirlpool AAAA', 'CHECKSUM_ALGORITHM_UNSUPPORTED'],
    ['an unsupported algorithm with no digest to speak of', 'crc64 !!', 'CHECKSUM_ALGORITHM_UNSUPPORTED'],
    ['uppercase algorithm names', 'SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=', 'INVALID_CHECKSUM'],
    ['no separator', 'sha1Kq5sNclPz7QV2+lfQIuc6R7oRu0=', 'INVALID_CHECKSUM'],
    ['an algorithm without a value', 'sha1', 'INVALID_CHECKSUM'],
  ])('answers %s with 400 and stores nothing', async (_label, header, code) => {
    const url = (await tus.create(11)).headers.get('location')!;
    const response = await tus.patch(url, 0, 'hello world', { 'Upload-Checksum': header });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe(code);
    expect((await tus.head(url)).headers.get('upload-offset')).toBe('0');
  });

  // A value that cannot be a digest of the algorithm it names matches no body: a mismatch.
  it.each([
    ['a digest of the wrong length', 'sha1 AAAA'],
    ['a value that is not base64', 'sha1 !!!!'],
    ['base64 that is not padded', 'sha256 abc'],
    ['a sha1-sized digest named md5', `md5 ${createHash('sha1').update('hello world').digest('base64')}`],
    ['an md5-sized digest named sha512', `sha512 ${createHash('md5').update('hello world').digest('base64')}`],
    ['a crc32 of 6 bytes', 'crc32 AAAAAAAA'],
    ['two values', `sha1 ${createHash('sha1').update('hello world').digest('base64')} AAAA`],
  ])('answers %s with 460, discards the body and keeps the offset', async (_label, header) => {
    const data = Buffer.from('hello world');
    const url = (await tus.create(data.length)).headers.get('location')!;
    const response = await tus.patch(url, 0, data, { 'Upload-Checksum': header });
    expect(response.status).toBe(460);
    expect(response.headers.get('tus-resumable')).toBe('1.0.0');
    expect(await errorCode(response)).toBe('CHECKSUM_MISMATCH');
    expect((await tus.head(url)).headers.get('upload-offset')).toBe('0');
    // The connection and the upload are fine: the right bytes go in next.
    const right = await tus.patch(url, 0, data, { 'Upload-Checksum': checksum('sha1', data) });
    expect(right.status).toBe(204);
    expect(right.headers.get('upload-offset')).toBe(String(data.length));
  });

  it('answers creation-with-upload with an impossible checksum with 460 and creates nothing', async () => {
    const count = async () => (await tus.db.sql<{ n: number }[]>`select count(*)::int as n from uploads`)[0]!.n;
    const before = await count();
    const response = await tus.create(11, { ...OCTET, 'Upload-Checksum': 'md5 AAAA' }, 'hello world');
    expect(response.status).toBe(460);
    expect(await errorCode(response)).toBe('CHECKSUM_MISMATCH');
    expect(response.headers.get('location')).toBeNull();
    expect(await count()).toBe(before);
  });

  it('verifies a checksum on creation-with-upload', async () => {
    const data = Buffer.from('checksummed creation');
    const bad = await tus.create(data.length, { ...OCTET, 'Upload-Checksum': checksum('md5', Buffer.from('other')) }, data);
    expect(bad.status).toBe(460);
    const good = await tus.create(data.length, { ...OCTET, 'Upload-Checksum': checksum('md5', data) }, data);
    expect(good.status).toBe(201);
    expect(good.headers.get('upload-offset')).toBe(String(data.length));
  });

  async function trailerPatch(url: string, offset: number, data: Buffer, trailer: string | null): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.request(url, {
        method: 'PATCH',
        headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), Trailer: 'Upload-Checksum', 'Transfer-Encoding': 'chunked' },
      });
      request.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      request.on('error', reject);
      request.write(data.subarray(0, Math.floor(data.length / 2)));
      request.write(data.subarray(Math.floor(data.length / 2)));
      if (trailer) request.addTrailers({ 'Upload-Checksum': trailer });
      request.end();
    });
  }

  it('verifies a checksum sent as a trailer (checksum-trailer)', async () => {
    const data = randomBytes(200_000);
    const url = (await tus.create(data.length)).headers.get('location')!;
    const wrong = await trailerPatch(url, 0, data, checksum('sha256', randomBytes(10)));
    expect(wrong.status).toBe(460);
    const impossible = await trailerPatch(url, 0, data, 'sha256 AAAA');
    expect(impossible.status).toBe(460);
    expect(JSON.parse(impossible.body).error.code).toBe('CHECKSUM_MISMATCH');
    const missing = await trailerPatch(url, 0, data, null);
    expect(missing.status).toBe(400);
    expect(JSON.parse(missing.body).error.code).toBe('MISSING_CHECKSUM_TRAILER');
    expect((await tus.head(url)).headers.get('upload-offset')).toBe('0');
    const right = await trailerPatch(url, 0, data, checksum('crc32', data));
    expect(right.status).toBe(204);
    expect((await waitForFinal(tus.server.url, idOf(url))).sha256).toBe(sha256(data));
  });

  it('keeps nothing of a checksummed chunk whose connection drops half-way', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const url = (await tus.create(data.length)).headers.get('location')!;
    await new Promise<void>((resolve) => {
      const request = http.request(url, {
        method: 'PATCH',
        headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Upload-Checksum': checksum('sha1', data), 'Content-Length': String(data.length) },
      });
      request.on('error', () => resolve());
      request.write(data.subarray(0, 1024 * 1024), () => setTimeout(() => request.destroy(), 100));
    });
    await new Promise((r) => setTimeout(r, 300));
    expect((await tus.head(url)).headers.get('upload-offset')).toBe('0');
    const spool = await import('node:fs/promises').then((fs) => fs.readdir(`${tus.server.env.DATA_DIR}/spool`, { recursive: true }));
    expect(spool.filter((name) => String(name).endsWith('.chunk'))).toEqual([]);
  });
});
