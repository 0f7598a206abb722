// tus 1.0.0 concatenation (and concatenation-unfinished), clause by clause, plus tus-js-client's
// parallel uploads (which use it) ending byte-identical on both stores.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as tusClient from 'tus-js-client';
import { waitForFinal } from '../support/api.js';
import { waitFor } from '../support/ports.js';
import type { StorageKind } from '../support/server.js';
import { idOf, sha256 } from '../support/tus.js';
import { errorCode, meta, TUS, useTusServer } from './support.js';

describe.each<StorageKind>(['file', 's3'])('concatenation with %s storage', (storage) => {
  const tus = useTusServer(storage);
  const partial = async (data: string | Buffer, send = true) => {
    const location = (await tus.create(Buffer.byteLength(data), { 'Upload-Concat': 'partial' })).headers.get('location')!;
    if (send) expect((await tus.patch(location, 0, data)).status).toBe(204);
    return location;
  };
  const final = (urls: string[], extra: Record<string, string> = {}) =>
    tus.request('POST', tus.endpoint, { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}`, 'Upload-Metadata': meta({ filename: 'joined.bin' }), ...extra });

  it('concatenates partial uploads in the order given (the specification\'s example)', async () => {
    const a = await partial('hello');
    const b = await partial(' world');
    const head = await tus.head(a);
    expect(head.headers.get('upload-concat')).toBe('partial');
    expect(head.headers.get('upload-offset')).toBe('5');

    // Relative and absolute URLs both work.
    const created = await final([new URL(a).pathname, b]);
    expect(created.status).toBe(201);
    const location = created.headers.get('location')!;
    const finalHead = await tus.head(location);
    expect(finalHead.headers.get('upload-length')).toBe('11');
    expect(finalHead.headers.get('upload-concat')).toBe(`final;${new URL(a).pathname} ${b}`);
    const record = await waitForFinal(tus.server.url, idOf(location));
    expect(record.status).toBe('ready');
    expect(record.size).toBe(11);
    expect(record.sha256).toBe(sha256(Buffer.from('hello world')));
    expect(record.filename).toBe('joined.bin');
    const after = await tus.head(location);
    expect(after.headers.get('upload-offset')).toBe('11');
    expect(after.headers.get('upload-length')).toBe('11');
  });

  it('accepts the final before its partials finish and assembles when the last one does', async () => {
    const a = await partial('first-');
    const b = await partial('second', false);
    const location = (await final([a, b])).headers.get('location')!;
    const early = await tus.head(location);
    expect(early.status).toBe(200);
    // What the partials hold so far: all of the first, none of the second.
    expect(early.headers.get('upload-offset')).toBe('6');
    expect(early.headers.get('upload-length')).toBe('12');
    expect((await tus.patch(b, 0, 'second')).status).toBe(204);
    const record = await waitForFinal(tus.server.url, idOf(location));
    expect(record.sha256).toBe(sha256(Buffer.from('first-second')));
    const assembled = await tus.head(location);
    expect(assembled.headers.get('upload-offset')).toBe('12');
    expect(assembled.headers.get('upload-length')).toBe('12');
  });

  it('answers HEAD of a final with Upload-Offset and Upload-Length from the start: what its partials hold so far', async () => {
    const a = await partial('ab');
    const b = await partial('wxyz', false);
    // A partial listed twice counts twice, in the length and in the offset.
    const location = (await final([a, b, a])).headers.get('location')!;
    const expectHead = async (offset: string) => {
      const head = await tus.head(location);
      expect(head.status).toBe(200);
      expect(head.headers.get('tus-resumable')).toBe('1.0.0');
      expect(head.headers.get('upload-length')).toBe('8');
      expect(head.headers.get('upload-offset')).toBe(offset);
      expect(head.headers.get('upload-concat')).toBe(`final;${a} ${b} ${a}`);
      expect(head.headers.get('cache-control')).toBe('no-store');
    };
    await expectHead('4');
    expect((await tus.patch(b, 0, 'w')).status).toBe(204);
    await expectHead('5');
    expect((await tus.patch(b, 1, 'xyz')).status).toBe(204);
    const record = await waitForFinal(tus.server.url, idOf(location));
    expect(record.sha256).toBe(sha256(Buffer.from('abwxyzab')));
    await expectHead('8');
  });

  it('lets a partial be used several times, in one final and in others', async () => {
    const a = await partial('ab');
    const first = (await final([a, a, a])).headers.get('location')!;
    const second = (await final([a])).headers.get('location')!;
    expect((await waitForFinal(tus.server.url, idOf(first))).sha256).toBe(sha256(Buffer.from('ababab')));
    expect((await waitForFinal(tus.server.url, idOf(second))).sha256).toBe(sha256(Buffer.from('ab')));
  });

  it('MUST answer PATCH to a final upload with 403 and leave it alone', async () => {
    const a = await partial('x', false);
    const location = (await final([a])).headers.get('location')!;
    const response = await tus.patch(location, 0, 'y');
    expect(response.status).toBe(403);
    expect(await errorCode(response)).toBe('FINAL_UPLOAD_READ_ONLY');
  });

  it.each([
    ['with Upload-Length', async (urls: string[]) => final(urls, { 'Upload-Length': '5' })],
    ['naming a non-partial upload', async () => final([(await tus.create(3)).headers.get('location')!])],
    ['naming no upload of this server', async () => final(['https://elsewhere.example/files/abc'])],
    ['naming a missing upload', async () => final([`${tus.endpoint}/${'c'.repeat(32)}`])],
    ['with an empty list', async () => tus.request('POST', tus.endpoint, { ...TUS, 'Upload-Concat': 'final;' })],
    ['with another Upload-Concat value', async () => tus.request('POST', tus.endpoint, { ...TUS, 'Upload-Length': '1', 'Upload-Concat': 'whole' })],
  ])('refuses a final %s with 400', async (_label, send) => {
    const response = await send([await partial('zz')]);
    expect(response.status).toBe(400);
    expect(['INVALID_UPLOAD_CONCAT', 'INVALID_UPLOAD_LENGTH']).toContain(await errorCode(response));
  });

  it('never processes a partial upload on its own and hides it from the files API', async () => {
    const a = await partial('just a chunk');
    const id = idOf(a);
    await new Promise((r) => setTimeout(r, 300));
    const [row] = await tus.db.sql<{ status: string }[]>`select status from uploads where id = ${id}`;
    expect(row!.status).toBe('uploading');
    expect((await fetch(`${tus.server.url}/api/files/${id}`)).status).toBe(404);
  });

  it('applies the type policy to the final upload', async () => {
    const a = await partial('not a png');
    const response = await final([a], { 'Upload-Metadata': meta({ filename: 'photo.png' }) });
    expect(response.status).toBe(201);
    const record = await waitForFinal(tus.server.url, idOf(response.headers.get('location')!));
    expect(record.status).toBe('rejected');
  });

  it('ends byte-identical with tus-js-client parallelUploads: 4', async () => {
    // Parts of at least 5 MiB on S3: assembled by server-side copies.
    const data = randomBytes(4 * 5 * 1024 * 1024 + 4321);
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new tusClient.Upload(data, {
        endpoint: tus.endpoint,
        parallelUploads: 4,
        retryDelays: [0, 200],
        metadata: { filename: 'parallel.bin' },
        onSuccess: () => resolve(upload.url!),
        onError: reject,
      });
      upload.start();
    });
    const record = await waitForFinal(tus.server.url, idOf(url), { timeoutMs: 60_000 });
    expect(record.status).toBe('ready');
    expect(record.size).toBe(data.length);
    expect(record.sha256).toBe(sha256(data));
    const download = await fetch(`${tus.server.url}/api/files/${record.id}/content`);
    expect(sha256(Buffer.from(await download.arrayBuffer()))).toBe(sha256(data));
    // The four partials are retired: they expire within the hour.
    const partials = await tus.db.sql<{ expires_at: Date }[]>`
      select expires_at from uploads where id = any(${(await tus.db.sql<{ parts: string[] }[]>`select concat_parts as parts from uploads where id = ${record.id}`)[0]!.parts})`;
    expect(partials).toHaveLength(4);
    for (const p of partials) expect(p.expires_at.getTime()).toBeLessThan(Date.now() + 3600_000 + 5000);
  });

  it('keeps quota accounting right: the final holds the bytes, not the partials as well', async () => {
    const before = (await (await fetch(`${tus.server.url}/api/me/quota`)).json()) as { reservedBytes: number; usedBytes: number };
    const a = await partial('12345');
    const b = await partial('67890');
    const location = (await final([a, b])).headers.get('location')!;
    await waitForFinal(tus.server.url, idOf(location));
    const after = await waitFor(async () => {
      const q = (await (await fetch(`${tus.server.url}/api/me/quota`)).json()) as { reservedBytes: number; usedBytes: number };
      return q.usedBytes === before.usedBytes + 10 ? q : null;
    });
    expect(after.reservedBytes).toBe(before.reservedBytes);
  });
});

