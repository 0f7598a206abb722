// The foundation over real HTTP with tus-js-client, for both stores: uploads of 0 B, 1 B and
// 20 MiB reach `ready` with the right hashes; a client-interrupted upload resumes; bad requests
// get clear JSON errors and leave the server healthy.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type StorageKind, type TestServer } from '../support/server.js';
import { createUpload, idOf, md5, sha256, upload } from '../support/tus.js';
import { waitForFinal } from '../support/api.js';

const MiB = 1024 * 1024;

describe.each<StorageKind>(['file', 's3'])('foundation with %s storage', (storage) => {
  let db: TestDatabase;
  let server: TestServer;
  let endpoint: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage }));
    endpoint = `${server.url}/files`;
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it.each([
    ['0 bytes', 0, undefined],
    ['1 byte', 1, undefined],
    ['20 MiB in 5 MiB chunks', 20 * MiB, 5 * MiB],
  ])('uploads %s to ready with the right SHA-256 and MD5', async (_label, size, chunkSize) => {
    const data = randomBytes(size);
    const id = await upload(data, { endpoint, filename: 'data.bin', ...(chunkSize ? { chunkSize } : {}) });
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const record = await waitForFinal(server.url, id);
    expect(record).toMatchObject({
      id,
      status: 'ready',
      size,
      sha256: sha256(data),
      md5: md5(data),
      kind: 'other',
      filename: 'data.bin',
      deduplicated: false,
      scan: { status: 'skipped' },
    });
    expect(record.readyAt).toBeTruthy();
  });

  it('resumes an upload the client interrupted from the offset the server reports', async () => {
    const chunkSize = 5 * MiB;
    const data = randomBytes(4 * chunkSize + 12345);
    let uploadUrl: string | null = null;
    // Abort once two chunks are acknowledged.
    await new Promise<void>((resolve, reject) => {
      const instance = createUpload(
        data,
        {
          endpoint,
          filename: 'resume.bin',
          chunkSize,
        },
        { onSuccess: () => reject(new Error('should not finish')), onError: reject },
      );
      instance.options.onChunkComplete = (_chunk, accepted) => {
        if (accepted >= 2 * chunkSize && !uploadUrl) {
          uploadUrl = instance.url;
          void instance.abort(false).then(resolve, reject);
        }
      };
      instance.start();
    });
    expect(uploadUrl).toBeTruthy();

    const head = await fetch(uploadUrl!, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    expect(head.status).toBe(200);
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBe(2 * chunkSize);
    expect(head.headers.get('upload-length')).toBe(String(data.length));
    expect(Date.parse(head.headers.get('upload-expires') ?? '')).toBeGreaterThan(Date.now());

    let resumedFrom = -1;
    await new Promise<void>((resolve, reject) => {
      const resumed = createUpload(data, { endpoint, uploadUrl: uploadUrl!, filename: 'resume.bin', chunkSize }, { onSuccess: resolve, onError: reject });
      resumed.options.onProgress = (sent) => {
        if (resumedFrom < 0) resumedFrom = sent;
      };
      resumed.start();
    });
    // The resumed client sent only what was missing.
    expect(resumedFrom).toBeGreaterThanOrEqual(offset);
    const record = await waitForFinal(server.url, idOf(uploadUrl!));
    expect(record.status).toBe('ready');
    expect(record.sha256).toBe(sha256(data));
    expect(record.size).toBe(data.length);
  });

  async function create(length: number, extra: Record<string, string> = {}) {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(length),
        'Upload-Metadata': `filename ${Buffer.from('bad.bin').toString('base64')}`,
        ...extra,
      },
    });
    expect(response.status).toBe(201);
    return response.headers.get('location')!;
  }

  async function expectJsonError(response: Response, status: number, code: string) {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toContain('application/json');
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(5);
    return body;
  }

  it('answers a PATCH at the wrong offset with 409 and leaves the upload intact', async () => {
    const location = await create(10);
    const patch = (offset: number, body: string) =>
      fetch(location, {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
        body,
      });
    expect((await patch(0, 'abcde')).status).toBe(204);
    await expectJsonError(await patch(3, 'xyz'), 409, 'OFFSET_MISMATCH');
    const head = await fetch(location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    expect(head.headers.get('upload-offset')).toBe('5');
    expect((await patch(5, 'fghij')).status).toBe(204);
    const record = await waitForFinal(server.url, idOf(location));
    expect(record.sha256).toBe(sha256(Buffer.from('abcdefghij')));
  });

  it('refuses a body that goes beyond Upload-Length', async () => {
    const location = await create(4);
    const response = await fetch(location, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: 'way too long',
    });
    await expectJsonError(response, 413, 'BODY_EXCEEDS_UPLOAD_LENGTH');
    const head = await fetch(location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    expect(head.headers.get('upload-offset')).toBe('0');
  });

  it('requires Tus-Resumable', async () => {
    const response = await fetch(endpoint, { method: 'POST', headers: { 'Upload-Length': '5' } });
    await expectJsonError(response, 412, 'TUS_RESUMABLE_REQUIRED');
    expect(response.headers.get('tus-version')).toBe('1.0.0');
  });

  it('stays healthy and ready after the bad requests', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', storage: 'ok' } });
  });
});
