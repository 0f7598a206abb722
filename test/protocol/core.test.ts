// tus 1.0.0 core protocol, clause by clause (HEAD, PATCH, OPTIONS, Tus-Resumable, Upload-Offset,
// X-HTTP-Method-Override), over real HTTP.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorCode, OCTET, TUS, useTusServer } from './support.js';

describe('tus core protocol', () => {
  // A shop's page on another origin uploads here: the operator lists it (CORS_ORIGINS).
  const tus = useTusServer('file', { CORS_ORIGINS: 'https://shop.example' });

  describe('HEAD', () => {
    it('MUST include Upload-Offset even when it is 0, Upload-Length when known, and Cache-Control: no-store', async () => {
      const url = (await tus.create(100)).headers.get('location')!;
      const head = await tus.head(url);
      expect([200, 204]).toContain(head.status);
      expect(head.headers.get('upload-offset')).toBe('0');
      expect(head.headers.get('upload-length')).toBe('100');
      expect(head.headers.get('cache-control')).toBe('no-store');
      expect(head.headers.get('tus-resumable')).toBe('1.0.0');
    });

    it('answers a missing upload with 404 and no Upload-Offset', async () => {
      const head = await tus.head(`${tus.endpoint}/${'0'.repeat(32)}`);
      expect(head.status).toBe(404);
      expect(head.headers.get('upload-offset')).toBeNull();
    });

    it('reports the offset of a completed upload', async () => {
      const url = (await tus.create(5)).headers.get('location')!;
      await tus.patch(url, 0, 'hello');
      const head = await tus.head(url);
      expect(head.headers.get('upload-offset')).toBe('5');
      expect(head.headers.get('upload-length')).toBe('5');
    });
  });

  describe('PATCH', () => {
    it('applies the bytes at Upload-Offset and answers 204 with the new offset', async () => {
      const url = (await tus.create(11)).headers.get('location')!;
      const first = await tus.patch(url, 0, 'hello');
      expect(first.status).toBe(204);
      expect(first.headers.get('upload-offset')).toBe('5');
      expect(first.headers.get('tus-resumable')).toBe('1.0.0');
      const second = await tus.patch(url, 5, ' world');
      expect(second.headers.get('upload-offset')).toBe('11');
    });

    it('MUST answer a mismatched offset with 409 without modifying the upload (and says where it is)', async () => {
      const url = (await tus.create(10)).headers.get('location')!;
      await tus.patch(url, 0, 'abc');
      for (const wrong of [0, 2, 4, 100]) {
        const response = await tus.patch(url, wrong, 'xyz');
        expect(response.status).toBe(409);
        expect(response.headers.get('upload-offset')).toBe('3');
        expect(await errorCode(response)).toBe('OFFSET_MISMATCH');
      }
      expect((await tus.head(url)).headers.get('upload-offset')).toBe('3');
    });

    it('SHOULD answer a Content-Type other than application/offset+octet-stream with 415', async () => {
      const url = (await tus.create(10)).headers.get('location')!;
      for (const type of [undefined, 'application/octet-stream', 'text/plain']) {
        const response = await tus.request('PATCH', url, { ...TUS, 'Upload-Offset': '0', ...(type ? { 'Content-Type': type } : {}) }, 'abc');
        expect(response.status).toBe(415);
        expect(await errorCode(response)).toBe('INVALID_CONTENT_TYPE');
      }
      expect((await tus.head(url)).headers.get('upload-offset')).toBe('0');
    });

    it.each([
      ['missing', undefined, 'MISSING_UPLOAD_OFFSET'],
      ['negative', '-1', 'INVALID_UPLOAD_OFFSET'],
      ['not a number', 'ten', 'INVALID_UPLOAD_OFFSET'],
      ['fractional', '1.5', 'INVALID_UPLOAD_OFFSET'],
      ['beyond 2^53', '99999999999999999999', 'INVALID_UPLOAD_OFFSET'],
      ['hexadecimal', '0x10', 'INVALID_UPLOAD_OFFSET'],
      ['signed', '+3', 'INVALID_UPLOAD_OFFSET'],
    ])('answers a %s Upload-Offset with 400', async (_label, offset, code) => {
      const url = (await tus.create(10)).headers.get('location')!;
      const response = await tus.request('PATCH', url, { ...TUS, ...OCTET, ...(offset !== undefined ? { 'Upload-Offset': offset } : {}) }, 'abc');
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe(code);
    });

    it('SHOULD answer a PATCH to a non-existent upload with 404', async () => {
      const response = await tus.patch(`${tus.endpoint}/${'a'.repeat(32)}`, 0, 'abc');
      expect(response.status).toBe(404);
      const odd = await tus.patch(`${tus.endpoint}/not-an-id`, 0, 'abc');
      expect(odd.status).toBe(404);
    });
  });

  describe('Tus-Resumable', () => {
    it('is required on every request but OPTIONS: 412 with Tus-Version, and nothing is processed', async () => {
      const before = await tus.db.sql`select count(*)::int as n from uploads`;
      for (const version of [undefined, '0.2.2', '2.0.0', '']) {
        const response = await tus.request('POST', tus.endpoint, {
          'Upload-Length': '10',
          ...(version !== undefined ? { 'Tus-Resumable': version } : {}),
        });
        expect(response.status).toBe(412);
        expect(response.headers.get('tus-version')).toBe('1.0.0');
        expect(['TUS_RESUMABLE_REQUIRED', 'TUS_VERSION_UNSUPPORTED']).toContain(await errorCode(response));
      }
      const after = await tus.db.sql`select count(*)::int as n from uploads`;
      expect(after[0]!.n).toBe(before[0]!.n);
    });

    it('is included in every response but OPTIONS', async () => {
      const url = (await tus.create(3)).headers.get('location')!;
      for (const response of [await tus.head(url), await tus.patch(url, 0, 'abc'), await tus.patch(url, 1, 'x'), await tus.head(`${tus.endpoint}/${'b'.repeat(32)}`)]) {
        expect(response.headers.get('tus-resumable')).toBe('1.0.0');
      }
    });

    it('is included in every answer, success or error, whoever makes it', async () => {
      const missing = `${tus.endpoint}/${'c'.repeat(32)}`;
      const created = await tus.create(10);
      const url = created.headers.get('location')!;
      const whole = (await tus.create(2, OCTET, 'ok')).headers.get('location')!;
      const partial = (await tus.create(2, { 'Upload-Concat': 'partial' })).headers.get('location')!;
      const final = await tus.request('POST', tus.endpoint, { ...TUS, 'Upload-Concat': `final;${partial}` });
      const expired = (await tus.create(10)).headers.get('location')!;
      await tus.db.sql`update uploads set expires_at = now() - interval '1 second' where id = ${expired.split('/').pop()!}`;
      const doomed = (await tus.create(10)).headers.get('location')!;
      const sha1 = (text: string) => `sha1 ${createHash('sha1').update(text).digest('base64')}`;
      const answers: Array<[number, Response]> = [
        [201, created],
        [201, final],
        [200, await tus.head(url)],
        [200, await tus.head(whole)],
        [200, await tus.head(final.headers.get('location')!)],
        [204, await tus.patch(url, 0, 'abc')],
        [204, await tus.request('DELETE', doomed, TUS)],
        [400, await tus.request('PATCH', url, { ...TUS, ...OCTET }, 'x')],
        [403, await tus.patch(final.headers.get('location')!, 0, 'x')],
        [404, await tus.head(missing)],
        [404, await tus.patch(missing, 0, 'x')],
        [404, await tus.request('DELETE', missing, TUS)],
        [409, await tus.patch(url, 0, 'x')],
        [409, await tus.patch(whole, 2, 'x')],
        [410, await tus.head(expired)],
        [412, await tus.request('POST', tus.endpoint, { 'Upload-Length': '10' })],
        [412, await tus.request('HEAD', url)],
        [413, await tus.create(1024 * 1024 * 1024 * 1024 * 1024)],
        [415, await tus.request('PATCH', url, { ...TUS, 'Upload-Offset': '3', 'Content-Type': 'text/plain' }, 'x')],
        [415, await tus.create(3, { 'Content-Type': 'text/plain' }, 'abc')],
        [460, await tus.patch(url, 3, 'def', { 'Upload-Checksum': sha1('xyz') })],
        [460, await tus.patch(url, 3, 'def', { 'Upload-Checksum': 'sha1 AAAA' })],
      ];
      for (const [status, response] of answers) {
        expect({ status: response.status, tusResumable: response.headers.get('tus-resumable') }).toEqual({ status, tusResumable: '1.0.0' });
      }
    });
  });

  describe('OPTIONS', () => {
    it('answers 204 with Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size and Tus-Checksum-Algorithm, ignoring Tus-Resumable', async () => {
      for (const [url, headers] of [
        [tus.endpoint, {}],
        [tus.endpoint, { 'Tus-Resumable': '0.0.1' }],
        [`${tus.endpoint}/${'d'.repeat(32)}`, { 'Tus-Resumable': '1.0.0' }],
      ] as Array<[string, Record<string, string>]>) {
        const response = await tus.request('OPTIONS', url, headers);
        expect(response.status).toBe(204);
        expect(await response.text()).toBe('');
        expect(response.headers.get('tus-resumable')).toBe('1.0.0');
        expect(response.headers.get('tus-version')).toBe('1.0.0');
        expect(response.headers.get('tus-extension')!.split(',')).toEqual(
          expect.arrayContaining(['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration', 'checksum', 'concatenation', 'concatenation-unfinished']),
        );
        expect(Number(response.headers.get('tus-max-size'))).toBeGreaterThan(0);
        expect(response.headers.get('tus-checksum-algorithm')!.split(',')).toEqual(expect.arrayContaining(['sha1', 'md5', 'sha256', 'crc32']));
      }
    });

    it('doubles as the CORS preflight', async () => {
      const response = await tus.request('OPTIONS', tus.endpoint, {
        Origin: 'https://shop.example',
        'Access-Control-Request-Method': 'PATCH',
        'Access-Control-Request-Headers': 'tus-resumable, upload-offset, content-type, upload-checksum',
      });
      expect(response.headers.get('access-control-allow-origin')).toBe('https://shop.example');
      expect(response.headers.get('access-control-allow-methods')).toContain('PATCH');
      expect(response.headers.get('access-control-allow-headers')!.toLowerCase()).toContain('upload-checksum');
    });
  });

  it('MUST interpret X-HTTP-Method-Override as the method', async () => {
    const url = (await tus.create(4)).headers.get('location')!;
    const patched = await tus.request('POST', url, { ...TUS, ...OCTET, 'Upload-Offset': '0', 'X-HTTP-Method-Override': 'PATCH' }, 'data');
    expect(patched.status).toBe(204);
    expect(patched.headers.get('upload-offset')).toBe('4');
    const other = (await tus.create(4)).headers.get('location')!;
    const deleted = await tus.request('POST', other, { ...TUS, 'X-HTTP-Method-Override': 'DELETE' });
    expect(deleted.status).toBe(204);
    expect((await tus.head(other)).status).toBe(404);
  });
});
