// Presigned requests of direct-to-bucket uploads, against real S3 APIs: an expired one is refused by
// the bucket (s3rver checks X-Amz-Expires; moto does not), and with S3_PUBLIC_ENDPOINT the URLs name
// the host clients reach the bucket by while the server talks to it by another name (moto).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startS3rver, type S3rverBucket } from '../support/s3rver.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';

const MiB = 2 ** 20;

async function api(app: TestServer, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Response> {
  return fetch(`${app.url}/api${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function createMultipart(app: TestServer, owner: Record<string, string>, filename: string, size: number) {
  const response = await api(app, 'POST', '/s3/multipart', owner, { filename, type: 'application/octet-stream', metadata: { name: filename }, size });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as { key: string; uploadId: string };
}

async function partUrl(app: TestServer, owner: Record<string, string>, upload: { key: string; uploadId: string }, partNumber: number): Promise<string> {
  const signed = await api(app, 'GET', `/s3/multipart/${encodeURIComponent(upload.uploadId)}/${partNumber}?${new URLSearchParams({ key: upload.key })}`, owner);
  expect(signed.status).toBe(200);
  return ((await signed.json()) as { url: string }).url;
}

describe('an expired presigned URL is refused by the bucket (s3rver)', () => {
  let db: TestDatabase;
  let bucket: S3rverBucket;
  let app: TestServer;
  let alice: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase('s3presignexpiry');
    bucket = await startS3rver(`tv-${randomBytes(5).toString('hex')}`);
    const env = await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv() });
    app = await startServer({
      ...env,
      STORAGE: 's3',
      S3_BUCKET: bucket.bucket,
      S3_ENDPOINT: bucket.endpoint,
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: bucket.accessKeyId,
      S3_SECRET_ACCESS_KEY: bucket.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
      S3_PRESIGN_EXPIRY: '2s',
    });
    alice = await bearer('alice');
  });
  afterAll(async () => {
    await app?.stop();
    await bucket?.stop();
    await db?.drop();
  });

  it('takes a part within S3_PRESIGN_EXPIRY and refuses the same kind of URL after it', async () => {
    const upload = await createMultipart(app, alice, 'late.bin', 2 * 5 * MiB);
    const fresh = await fetch(await partUrl(app, alice, upload, 1), { method: 'PUT', body: new Uint8Array(randomBytes(5 * MiB)) });
    expect(fresh.status).toBe(200);

    const late = await partUrl(app, alice, upload, 2);
    expect(new URL(late).searchParams.get('X-Amz-Expires')).toBe('2');
    await sleep(3_000);
    const refused = await fetch(late, { method: 'PUT', body: new Uint8Array(randomBytes(5 * MiB)) });
    expect(refused.status).toBe(403);
    const body = await refused.text();
    expect(body).toContain('<Code>AccessDenied</Code>');
    expect(body).toContain('Request has expired');

    // A fresh URL for the same part works again: expiry costs the client a presign, not the upload.
    const again = await fetch(await partUrl(app, alice, upload, 2), { method: 'PUT', body: new Uint8Array(randomBytes(5 * MiB)) });
    expect(again.status).toBe(200);
  });
});

describe('S3_PUBLIC_ENDPOINT: presigned for the host clients use (moto)', () => {
  let db: TestDatabase;
  let app: TestServer;
  let alice: Record<string, string>;
  let internal: URL;

  beforeAll(async () => {
    db = await createTestDatabase('s3publicendpoint');
    const env = await serverEnv({ databaseUrl: db.url, storage: 's3', extra: jwtEnv() });
    internal = new URL(env.S3_ENDPOINT!);
    // The same moto under another name: the server reaches it at 127.0.0.1, clients at localhost.
    app = await startServer({ ...env, S3_PUBLIC_ENDPOINT: `http://localhost:${internal.port}` });
    alice = await bearer('alice');
  });
  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  it('part URLs and presigned POSTs name the public host; the server completes through the internal one', async () => {
    const bytes = randomBytes(5 * MiB + 123);
    const upload = await createMultipart(app, alice, 'public.bin', bytes.length);
    const url = new URL(await partUrl(app, alice, upload, 1));
    expect(url.host).toBe(`localhost:${internal.port}`);
    const put = await fetch(url, { method: 'PUT', body: new Uint8Array(bytes) });
    expect(put.status).toBe(200);
    const completed = await api(app, 'POST', `/s3/multipart/${encodeURIComponent(upload.uploadId)}/complete?${new URLSearchParams({ key: upload.key })}`, alice, {
      parts: [{ PartNumber: 1, ETag: put.headers.get('etag') }],
    });
    expect(completed.status, await completed.clone().text()).toBe(200);
    const { fileId } = (await completed.json()) as { fileId: string };
    const record = await waitForFinal(app.url, fileId, { headers: alice });
    expect(record.status).toBe('ready');
    expect(record.size).toBe(bytes.length);

    const params = await api(app, 'GET', `/s3/params?${new URLSearchParams({ filename: 'small.bin', type: 'application/octet-stream' })}`, alice);
    expect(params.status).toBe(200);
    expect(new URL(((await params.json()) as { url: string }).url).host).toBe(`localhost:${internal.port}`);
  });
});
