// tus 1.0.0 extensions creation, creation-with-upload, creation-defer-length, termination and
// expiration, clause by clause, over real HTTP.
import { describe, expect, it } from 'vitest';
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

    it('leaves finished uploads to the files API (409 with the way to delete them)', async () => {
      const location = (await tus.create(2, OCTET, 'ok')).headers.get('location')!;
      // Wait until processing picked it up (the record leaves "uploading").
      for (let i = 0; i < 100 && (await tus.db.sql`select 1 from uploads where status = 'uploading' and id = ${location.split('/').pop()!}`).length; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const response = await tus.request('DELETE', location, TUS);
      expect(response.status).toBe(409);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain('/api/files/');
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
