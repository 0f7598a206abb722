// tus 1.0.0 extensions creation, creation-with-upload, creation-defer-length, termination and
// expiration, clause by clause, over real HTTP.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { idOf, sha256 } from '../support/tus.js';
import { errorCode, meta, OCTET, TUS, useTusServer } from './support.js';

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

describe('creation', () => {
  const tus = useTusServer('file', { MAX_UPLOAD_SIZE: '1MiB' });

  it('MUST answer 201 Created with an absolute Location for the new upload, at offset 0', async () => {
    const response = await tus.create(100);
    expect(response.status).toBe(201);
    const location = response.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^${tus.endpoint}/[0-9a-f]{32}$`));
    expect(response.headers.get('tus-resumable')).toBe('1.0.0');
    expect((await tus.head(location)).headers.get('upload-offset')).toBe('0');
  });

  it('completes an Upload-Length: 0 upload at once', async () => {
    const location = (await tus.create(0)).headers.get('location')!;
    const head = await tus.head(location);
    expect(head.headers.get('upload-offset')).toBe('0');
    expect(head.headers.get('upload-length')).toBe('0');
  });

  it.each([
    ['both Upload-Length and Upload-Defer-Length', { 'Upload-Length': '10', 'Upload-Defer-Length': '1' }, 'INVALID_UPLOAD_LENGTH'],
    ['neither', {}, 'INVALID_UPLOAD_LENGTH'],
    ['Upload-Defer-Length other than 1', { 'Upload-Defer-Length': '2' }, 'INVALID_UPLOAD_DEFER_LENGTH'],
    ['a negative Upload-Length', { 'Upload-Length': '-1' }, 'INVALID_UPLOAD_LENGTH'],
    ['a non-numeric Upload-Length', { 'Upload-Length': 'lots' }, 'INVALID_UPLOAD_LENGTH'],
  ])('answers %s with 400', async (_label, headers, code) => {
    const response = await tus.request('POST', tus.endpoint, { ...TUS, 'Upload-Metadata': meta({ filename: 'x.bin' }), ...headers });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe(code);
  });

  it('MUST answer 413 when Upload-Length exceeds Tus-Max-Size', async () => {
    const response = await tus.create(1024 * 1024 + 1);
    expect(response.status).toBe(413);
    expect(await errorCode(response)).toBe('FILE_TOO_LARGE');
  });

  describe('Upload-Metadata', () => {
    it('is returned on HEAD as the client sent it, empty values included', async () => {
      const value = `${meta({ filename: 'show.bin', note: 'ünïcødé ✓' })},flag`;
      const location = (await tus.create(10, { 'Upload-Metadata': value })).headers.get('location')!;
      expect((await tus.head(location)).headers.get('upload-metadata')).toBe(value);
    });

    it.each([
      ['a value that is not base64', 'filename !!!notbase64'],
      ['a duplicated key', `${meta({ filename: 'a.bin' })},${meta({ filename: 'b.bin' })}`],
      ['an empty pair', `${meta({ filename: 'a.bin' })},,${meta({ type: 'x/y' })}`],
      ['three parts in a pair', 'filename YQ== YQ=='],
      ['more than 4 KiB', `filename ${Buffer.from('x'.repeat(5000)).toString('base64')}`],
    ])('refuses %s with 400', async (_label, value) => {
      const response = await tus.create(10, { 'Upload-Metadata': value });
      expect(response.status).toBe(400);
      expect(['INVALID_METADATA', 'METADATA_TOO_LARGE']).toContain(await errorCode(response));
    });
  });

  describe('creation-with-upload', () => {
    it('accepts bytes in the POST and answers with Upload-Offset', async () => {
      const response = await tus.create(11, OCTET, 'hello');
      expect(response.status).toBe(201);
      expect(response.headers.get('upload-offset')).toBe('5');
      const location = response.headers.get('location')!;
      expect((await tus.patch(location, 5, ' world')).headers.get('upload-offset')).toBe('11');
    });

    it('completes an upload sent whole in the POST', async () => {
      const response = await tus.create(5, OCTET, 'whole');
      expect(response.headers.get('upload-offset')).toBe('5');
      expect(response.headers.get('upload-expires')).toBeNull();
    });

    it('refuses a POST body larger than Upload-Length', async () => {
      const response = await tus.create(3, OCTET, 'too long');
      expect(response.status).toBe(413);
    });

    const stored = async () => (await readdir(path.join(tus.server.env.DATA_DIR!, 'files'), { recursive: true }).catch(() => [])).length;
    const records = async () => (await tus.db.sql<{ n: number }[]>`select count(*)::int as n from uploads`)[0]!.n;

    it.each([
      ['text/plain', { 'Content-Type': 'text/plain' }],
      ['application/octet-stream', { 'Content-Type': 'application/octet-stream' }],
      ['no Content-Type at all', {}],
    ])('answers a POST whose body is %s with 415 and creates nothing', async (_label, type) => {
      const [files, rows] = [await stored(), await records()];
      const response = await tus.create(5, type, Buffer.from('hello'));
      expect(response.status).toBe(415);
      expect(response.headers.get('tus-resumable')).toBe('1.0.0');
      expect(await errorCode(response)).toBe('INVALID_CONTENT_TYPE');
      expect(response.headers.get('location')).toBeNull();
      expect(await records()).toBe(rows);
      expect(await stored()).toBe(files);
    });

    it('answers a chunked POST body of another type with 415 and creates nothing', async () => {
      const rows = await records();
      const status = await new Promise<number>((resolve, reject) => {
        const request = http.request(tus.endpoint, {
          method: 'POST',
          headers: { ...TUS, 'Upload-Length': '5', 'Upload-Metadata': meta({ filename: 'chunked.bin' }), 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' },
        });
        request.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        request.on('error', reject);
        request.write('hel');
        request.end('lo');
      });
      expect(status).toBe(415);
      expect(await records()).toBe(rows);
    });

    it('accepts a POST without a body whatever its Content-Type', async () => {
      for (const type of [{ 'Content-Type': 'text/plain' }, { 'Content-Type': 'application/json' }, {}] as Record<string, string>[]) {
        const response = await tus.create(5, type);
        expect(response.status).toBe(201);
        expect((await tus.head(response.headers.get('location')!)).headers.get('upload-offset')).toBe('0');
      }
    });
  });

  describe('creation-defer-length', () => {
    it('shows Upload-Defer-Length: 1 until the length is set by a PATCH, which then MUST NOT change', async () => {
      const location = (await tus.create(null)).headers.get('location')!;
      const head = await tus.head(location);
      expect(head.headers.get('upload-defer-length')).toBe('1');
      expect(head.headers.get('upload-length')).toBeNull();
      const first = await tus.patch(location, 0, 'abc', { 'Upload-Length': '6' });
      expect(first.status).toBe(204);
      expect((await tus.head(location)).headers.get('upload-length')).toBe('6');
      const changed = await tus.patch(location, 3, 'def', { 'Upload-Length': '7' });
      expect(changed.status).toBe(400);
      const finished = await tus.patch(location, 3, 'def');
      expect(finished.headers.get('upload-offset')).toBe('6');
    });
  });

  describe('termination', () => {
    it('answers DELETE with 204 and then 404 for the upload', async () => {
      const location = (await tus.create(10)).headers.get('location')!;
      await tus.patch(location, 0, 'abc');
      const deleted = await tus.request('DELETE', location, TUS);
      expect(deleted.status).toBe(204);
      expect(deleted.headers.get('tus-resumable')).toBe('1.0.0');
      for (const response of [await tus.head(location), await tus.patch(location, 3, 'd'), await tus.request('DELETE', location, TUS)]) {
        expect(response.status).toBe(404);
      }
    });

    const quota = async () => (await (await fetch(`${tus.server.url}/api/me/quota`)).json()) as { usedBytes: number; fileCount: number };

    it('deletes a completed upload (204) exactly as DELETE /api/files/:id does', async () => {
      const data = randomBytes(1000);
      const before = await quota();
      const location = (await tus.create(data.length, OCTET, data)).headers.get('location')!;
      const id = idOf(location);
      expect((await waitForFinal(tus.server.url, id)).status).toBe('ready');
      expect(await quota()).toMatchObject({ usedBytes: before.usedBytes + data.length, fileCount: before.fileCount + 1 });

      const deleted = await tus.request('DELETE', location, TUS);
      expect(deleted.status).toBe(204);
      expect(deleted.headers.get('tus-resumable')).toBe('1.0.0');
      const [row] = await tus.db.sql<{ status: string; blob_sha256: string | null }[]>`select status, blob_sha256 from uploads where id = ${id}`;
      expect(row).toEqual({ status: 'deleted', blob_sha256: null });
      const [entry] = await tus.db.sql<{ action: string; actor: string }[]>`select action, actor from audit_log where upload_id = ${id} order by id desc limit 1`;
      expect(entry!.action).toBe('FILE_DELETED');
      expect(await tus.db.sql`select 1 from blobs where sha256 = ${sha256(data)}`).toHaveLength(0);
      expect(await quota()).toMatchObject({ usedBytes: before.usedBytes, fileCount: before.fileCount });
      expect((await fetch(`${tus.server.url}/api/files/${id}`)).status).toBe(404);
      for (const response of [await tus.head(location), await tus.request('DELETE', location, TUS)]) {
        expect(response.status).toBe(404);
      }
    });

    it('deletes a file still processing, and one that was rejected', async () => {
      // Processing: the record left "uploading"; the job may or may not have run yet.
      const processing = (await tus.create(2, OCTET, 'ok')).headers.get('location')!;
      for (let i = 0; i < 100 && (await tus.db.sql`select 1 from uploads where status = 'uploading' and id = ${idOf(processing)}`).length; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await tus.request('DELETE', processing, TUS)).status).toBe(204);
      // Rejected: a .png whose bytes are not a picture.
      const rejected = (await tus.create(9, { ...OCTET, 'Upload-Metadata': meta({ filename: 'fake.png' }) }, 'not a png')).headers.get('location')!;
      expect((await waitForFinal(tus.server.url, idOf(rejected))).status).toBe('rejected');
      expect((await tus.request('DELETE', rejected, TUS)).status).toBe(204);
      for (const location of [processing, rejected]) {
        const [row] = await tus.db.sql<{ status: string }[]>`select status from uploads where id = ${idOf(location)}`;
        expect(row!.status).toBe('deleted');
        expect((await tus.head(location)).status).toBe(404);
      }
    });

    it('keeps bytes shared through de-duplication until their last reference is deleted', async () => {
      const data = randomBytes(3000);
      const first = (await tus.create(data.length, OCTET, data)).headers.get('location')!;
      expect((await waitForFinal(tus.server.url, idOf(first))).status).toBe('ready');
      const second = (await tus.create(data.length, OCTET, data)).headers.get('location')!;
      expect((await waitForFinal(tus.server.url, idOf(second))).deduplicated).toBe(true);
      const refs = async () => (await tus.db.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(data)}`)[0]?.ref_count ?? 0;
      expect(await refs()).toBe(2);

      expect((await tus.request('DELETE', first, TUS)).status).toBe(204);
      expect(await refs()).toBe(1);
      const content = await fetch(`${tus.server.url}/api/files/${idOf(second)}/content`);
      expect(content.status).toBe(200);
      expect(sha256(Buffer.from(await content.arrayBuffer()))).toBe(sha256(data));

      expect((await tus.request('DELETE', second, TUS)).status).toBe(204);
      expect(await refs()).toBe(0);
    });

    it('terminates a partial upload, complete or not, as an unfinished upload (204, then 404)', async () => {
      for (const send of [true, false]) {
        const location = (await tus.create(3, { 'Upload-Concat': 'partial' })).headers.get('location')!;
        if (send) expect((await tus.patch(location, 0, 'abc')).status).toBe(204);
        const deleted = await tus.request('DELETE', location, TUS);
        expect(deleted.status).toBe(204);
        expect((await tus.head(location)).status).toBe(404);
        const [row] = await tus.db.sql<{ status: string }[]>`select status from uploads where id = ${idOf(location)}`;
        expect(row!.status).toBe('deleted');
      }
    });

    it('deletes an assembled final upload (204), its partials left as they are', async () => {
      const part = (await tus.create(4, { 'Upload-Concat': 'partial' })).headers.get('location')!;
      expect((await tus.patch(part, 0, 'abcd')).status).toBe(204);
      const final = await tus.request('POST', tus.endpoint, { ...TUS, 'Upload-Concat': `final;${part}`, 'Upload-Metadata': meta({ filename: 'joined.bin' }) });
      const location = final.headers.get('location')!;
      expect((await waitForFinal(tus.server.url, idOf(location))).status).toBe('ready');
      expect((await tus.request('DELETE', location, TUS)).status).toBe(204);
      expect((await tus.head(location)).status).toBe(404);
      expect((await tus.head(part)).headers.get('upload-offset')).toBe('4');
    });
  });

  describe('expiration', () => {
    it('sends Upload-Expires (RFC 9110 date) on POST, PATCH and HEAD of unfinished uploads, extended by activity', async () => {
      const created = await tus.create(10);
      const location = created.headers.get('location')!;
      const id = location.split('/').pop()!;
      const onPost = created.headers.get('upload-expires')!;
      expect(onPost).toMatch(IMF_FIXDATE);
      expect(Date.parse(onPost)).toBeGreaterThan(Date.now() + 23 * 3600_000);
      const exact = async () => (await tus.db.sql<{ expires_at: Date }[]>`select expires_at from uploads where id = ${id}`)[0]!.expires_at.getTime();
      // The record's expiry, as the header's whole seconds.
      const recorded = async () => Math.floor((await exact()) / 1000) * 1000;
      const before = await recorded();
      const untouched = await exact();
      expect(Math.abs(before - Date.parse(onPost))).toBeLessThanOrEqual(1000);
      // Activity soon after the last move leaves the record alone (a write per PATCH is not
      // worth a second), and the header says what the record says.
      const early = await tus.patch(location, 0, 'a');
      expect(Date.parse(early.headers.get('upload-expires')!)).toBe(before);
      expect(await exact()).toBe(untouched);
      // Once that gains more than a minute, a PATCH moves it.
      await tus.db.sql`update uploads set expires_at = expires_at - interval '2 minutes' where id = ${id}`;
      const patched = await tus.patch(location, 1, 'bc');
      const onPatch = patched.headers.get('upload-expires')!;
      expect(onPatch).toMatch(IMF_FIXDATE);
      expect(Date.parse(onPatch)).toBeGreaterThanOrEqual(before);
      expect(await recorded()).toBe(Date.parse(onPatch));
      expect((await tus.head(location)).headers.get('upload-expires')).toBe(onPatch);
      const done = await tus.patch(location, 3, '1234567');
      expect(done.headers.get('upload-expires')).toBeNull();
    });

    it('answers 410 Gone once an upload has expired', async () => {
      const location = (await tus.create(10)).headers.get('location')!;
      await tus.db.sql`update uploads set expires_at = now() - interval '1 second' where id = ${location.split('/').pop()!}`;
      expect((await tus.head(location)).status).toBe(410);
      const patch = await tus.patch(location, 0, 'x');
      expect(patch.status).toBe(410);
      expect(await errorCode(patch)).toBe('UPLOAD_EXPIRED');
    });
  });
});
