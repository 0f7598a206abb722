// Direct-to-bucket uploads (STORAGE=s3, moto as the bucket): the Companion-compatible routes under
// /api/s3 called as @uppy/aws-s3 calls them, the client's bytes going straight to the bucket with
// the presigned URLs. What lands is refused unless it is what was declared and allowed (and then
// nothing of it stays: object, record, reservation), or processed exactly like a tus upload; the
// application's pre-create hook is asked as for a tus creation.
import { createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { s3Client } from '../support/moto.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { startReceiver, verify, type Receiver } from '../support/webhook-receiver.js';

const MiB = 2 ** 20;
const PRESIGN_EXPIRY_SECONDS = 120;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('direct-to-bucket uploads (/api/s3)', () => {
  let db: TestDatabase;
  let app: TestServer;
  let bucket: string;
  let s3: ReturnType<typeof s3Client>;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let admin: Record<string, string>;
  let hook: Receiver;

  beforeAll(async () => {
    db = await createTestDatabase('s3direct');
    // The application's pre-create hook: refuses names starting with "refused", tags "tagged" ones.
    hook = await startReceiver((request) => {
      const filename = String(request.body.filename);
      if (filename.startsWith('refused')) return { status: 422, body: JSON.stringify({ message: 'no sequences for this product' }), contentType: 'application/json' };
      if (filename.startsWith('tagged')) return { status: 200, body: JSON.stringify({ metadata: { productId: 'p-42' } }), contentType: 'application/json' };
      return 200;
    });
    const env = await serverEnv({
      databaseUrl: db.url,
      storage: 's3',
      extra: {
        ...jwtEnv(),
        S3_PRESIGN_EXPIRY: `${PRESIGN_EXPIRY_SECONDS}s`,
        PRE_CREATE_HOOK_URL: `${hook.url}/pre-create`,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: 'true',
      },
    });
    bucket = env.S3_BUCKET!;
    s3 = s3Client(env.S3_ENDPOINT!);
    app = await startServer(env);
    alice = await bearer('alice');
    bob = await bearer('bob');
    admin = await bearer('root', { role: 'admin' });
  });
  afterAll(async () => {
    await app?.stop();
    await hook?.close();
    await db?.drop();
  });

  async function api(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Response> {
    return fetch(`${app.url}/api${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  async function createMultipart(owner: Record<string, string>, filename: string, extra: Record<string, unknown> = {}) {
    const response = await api('POST', '/s3/multipart', owner, {
      filename,
      type: 'application/octet-stream',
      metadata: { name: filename, type: 'application/octet-stream', project: 'xmas' },
      ...extra,
    });
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as { key: string; uploadId: string };
  }

  const q = (key: string) => `?${new URLSearchParams({ key })}`;

  async function putPart(owner: Record<string, string>, upload: { key: string; uploadId: string }, partNumber: number, bytes: Buffer) {
    const signed = await api('GET', `/s3/multipart/${encodeURIComponent(upload.uploadId)}/${partNumber}${q(upload.key)}`, owner);
    expect(signed.status).toBe(200);
    const { url } = (await signed.json()) as { url: string };
    const put = await fetch(url, { method: 'PUT', body: new Uint8Array(bytes) });
    expect(put.status).toBe(200);
    return { PartNumber: partNumber, ETag: put.headers.get('etag')! };
  }

  const complete = (owner: Record<string, string>, upload: { key: string; uploadId: string }, parts: unknown[]) =>
    api('POST', `/s3/multipart/${encodeURIComponent(upload.uploadId)}/complete${q(upload.key)}`, owner, { parts });

  const quota = async (owner: Record<string, string>) => (await (await api('GET', '/me/quota', owner)).json()) as Record<string, number>;

  async function objectExists(key: string): Promise<boolean> {
    return s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
      () => true,
      () => false,
    );
  }

  async function openMultipartUploads(key: string): Promise<number> {
    const { Uploads } = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
    return (Uploads ?? []).length;
  }

  /** The upload id (file id) of a direct key: its last segment. */
  const fileId = (key: string) => key.split('/').at(-1)!;

  async function expectGone(owner: Record<string, string>, key: string) {
    expect(await objectExists(key)).toBe(false);
    expect(await openMultipartUploads(key)).toBe(0);
    expect((await api('GET', `/files/${fileId(key)}`, owner)).status).toBe(404);
    expect((await quota(owner)).reservedBytes).toBe(0);
  }

  it('uploads a file in parts straight to the bucket; it ends ready like a tus upload', async () => {
    const bytes = randomBytes(5 * MiB + 1234);
    const upload = await createMultipart(alice, 'show.bin', { size: bytes.length });
    expect(upload.key).toMatch(/^direct\/[0-9a-f]{16}\/[0-9a-f]{32}$/);
    const parts = [await putPart(alice, upload, 1, bytes.subarray(0, 5 * MiB)), await putPart(alice, upload, 2, bytes.subarray(5 * MiB))];

    const listed = await api('GET', `/s3/multipart/${encodeURIComponent(upload.uploadId)}${q(upload.key)}`, alice);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as Array<{ PartNumber: number }>).map((p) => p.PartNumber)).toEqual([1, 2]);

    const done = await complete(alice, upload, parts);
    expect(done.status, await done.clone().text()).toBe(200);
    const answer = (await done.json()) as { location: string; key: string; fileId: string };
    expect(answer).toMatchObject({ key: upload.key, fileId: fileId(upload.key) });
    expect(answer.location).toMatch(new RegExp(`/api/files/${answer.fileId}$`));

    const record = await waitForFinal(app.url, answer.fileId, { headers: alice });
    expect(record).toMatchObject({ status: 'ready', size: bytes.length, transport: 's3-direct', filename: 'show.bin', kind: 'other' });
    expect(record.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    const list = (await (await api('GET', '/files', alice)).json()) as { items?: Array<{ id: string }>; files?: Array<{ id: string }> };
    expect(JSON.stringify(list)).toContain(answer.fileId);
    const content = await api('GET', `/files/${answer.fileId}/content`, alice);
    expect(Buffer.from(await content.arrayBuffer()).equals(bytes)).toBe(true);
    expect((await quota(alice)).reservedBytes).toBe(0);

    // A retried completion (its answer lost) gets the same answer.
    const again = await complete(alice, upload, parts);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { fileId: string }).fileId).toBe(answer.fileId);
  });

  it('asks the pre-create hook (protocol s3-direct): a refusal creates nothing, an acceptance attaches its metadata', async () => {
    const before = await quota(alice);
    const refused = await api('POST', '/s3/multipart', alice, { filename: 'refused.bin', type: 'application/octet-stream', metadata: {}, size: 10 });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: { code: 'UPLOAD_REFUSED', message: 'no sequences for this product' } });
    const asked = hook.received.find((r) => r.body.filename === 'refused.bin')!;
    expect(verify(asked, SECRET)).toMatchObject({ owner: 'alice', filename: 'refused.bin', size: 10, protocol: 's3-direct' });
    expect(await quota(alice)).toEqual(before);

    const bytes = randomBytes(3000);
    const upload = await createMultipart(alice, 'tagged.bin', { size: bytes.length });
    const done = await complete(alice, upload, [await putPart(alice, upload, 1, bytes)]);
    expect(done.status).toBe(200);
    const record = await waitForFinal(app.url, fileId(upload.key), { headers: alice });
    expect(record).toMatchObject({ status: 'ready', transport: 's3-direct', appMetadata: { productId: 'p-42' } });
  });

  it("answers another owner's upload, and a key with another upload's id, exactly like a missing one (404)", async () => {
    const upload = await createMultipart(alice, 'mine.bin');
    const other = await createMultipart(alice, 'other.bin');
    const part = await putPart(alice, upload, 1, randomBytes(1000));
    const id = encodeURIComponent(upload.uploadId);
    const attempts = [
      api('GET', `/s3/multipart/${id}/1${q(upload.key)}`, bob),
      api('GET', `/s3/multipart/${id}${q(upload.key)}`, bob),
      complete(bob, upload, [part]),
      api('DELETE', `/s3/multipart/${id}${q(upload.key)}`, bob),
      api('POST', '/s3/confirm', bob, { key: upload.key }),
      api('POST', '/s3/sign', bob, { method: 'PUT', key: upload.key, uploadId: upload.uploadId, partNumber: 2 }),
      // Alice's own key with her other upload's multipart id: not one pair.
      api('GET', `/s3/multipart/${encodeURIComponent(other.uploadId)}/1${q(upload.key)}`, alice),
      complete(alice, { key: upload.key, uploadId: other.uploadId }, [part]),
      api('GET', `/s3/multipart/${id}/1${q('direct/0000000000000000/' + 'a'.repeat(32))}`, alice),
    ];
    for (const response of await Promise.all(attempts)) {
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
    // Untouched by all that: it still completes.
    expect((await complete(alice, upload, [part])).status).toBe(200);
  });

  it('refuses a completion with a missing part: the object, the record and the reservation go', async () => {
    const upload = await createMultipart(alice, 'gap.bin', { size: 5 * MiB + 10 });
    const first = await putPart(alice, upload, 1, randomBytes(5 * MiB));
    await putPart(alice, upload, 2, randomBytes(10));
    const response = await complete(alice, upload, [first]);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('PARTS_MISMATCH');
    await expectGone(alice, upload.key);
  });

  it('refuses more bytes than declared: the object, the record and the reservation go', async () => {
    const upload = await createMultipart(alice, 'big.bin', { size: 1000 });
    const part = await putPart(alice, upload, 1, randomBytes(2000));
    const response = await complete(alice, upload, [part]);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('SIZE_MISMATCH');
    await expectGone(alice, upload.key);
  });

  it("refuses an upload beyond the owner's quota once its size is known", async () => {
    const carol = await bearer('carol');
    expect((await api('PUT', '/admin/quotas/carol', admin, { maxBytes: 10_000 })).status).toBe(200);
    const upload = await createMultipart(carol, 'huge.bin');
    const part = await putPart(carol, upload, 1, randomBytes(20_000));
    const response = await complete(carol, upload, [part]);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('QUOTA_EXCEEDED');
    await expectGone(carol, upload.key);
    expect((await quota(carol)).usedBytes).toBe(0);
  });

  it('refuses a declared size over the quota at creation', async () => {
    const dave = await bearer('dave');
    expect((await api('PUT', '/admin/quotas/dave', admin, { maxBytes: 10_000 })).status).toBe(200);
    const response = await api('POST', '/s3/multipart', dave, { filename: 'x.bin', type: 'application/octet-stream', size: 20_000 });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('QUOTA_EXCEEDED');
  });

  // S3 refuses a presigned request after X-Amz-Date + X-Amz-Expires. moto (5.2) does not check the
  // expiry of presigned URLs, so what is checked here is that the server signs them for
  // S3_PRESIGN_EXPIRY, not longer.
  it('signs part URLs that expire after S3_PRESIGN_EXPIRY', async () => {
    const upload = await createMultipart(alice, 'late.bin');
    const signed = await api('GET', `/s3/multipart/${encodeURIComponent(upload.uploadId)}/batch${q(upload.key)}&partNumbers=1,2`, alice);
    expect(signed.status).toBe(200);
    const { presignedUrls } = (await signed.json()) as { presignedUrls: Record<string, string> };
    expect(Object.keys(presignedUrls).sort()).toEqual(['1', '2']);
    for (const [partNumber, url] of Object.entries(presignedUrls)) {
      const params = new URL(url).searchParams;
      expect(params.get('partNumber')).toBe(partNumber);
      expect(params.get('X-Amz-Expires')).toBe(String(PRESIGN_EXPIRY_SECONDS));
    }
  });

  it('abort releases the reservation and the multipart upload', async () => {
    const upload = await createMultipart(alice, 'abort.bin', { size: 4096 });
    expect((await quota(alice)).reservedBytes).toBe(4096);
    await putPart(alice, upload, 1, randomBytes(4096));
    const response = await api('DELETE', `/s3/multipart/${encodeURIComponent(upload.uploadId)}${q(upload.key)}`, alice);
    expect(response.status).toBe(200);
    await expectGone(alice, upload.key);
    // Gone for every route afterwards.
    expect((await api('GET', `/s3/multipart/${encodeURIComponent(upload.uploadId)}${q(upload.key)}`, alice)).status).toBe(404);
  });

  it('the lifecycle sweep aborts a multipart upload never completed in time (and its dry run lists it)', async () => {
    const erin = await bearer('erin');
    const upload = await createMultipart(erin, 'abandoned.bin', { size: 2048 });
    await putPart(erin, upload, 1, randomBytes(2048));
    await db.sql`update uploads set expires_at = now() - interval '1 minute' where id = ${fileId(upload.key)}`;
    const sweep = (dryRun: boolean) => api('POST', '/admin/uploads/cleanup', admin, { dryRun });

    const dry = (await (await sweep(true)).json()) as { expired: { ids: string[] } };
    expect(dry.expired.ids).toContain(fileId(upload.key));
    expect(await openMultipartUploads(upload.key)).toBe(1);

    const real = (await (await sweep(false)).json()) as { expired: { ids: string[] } };
    expect(real.expired.ids).toContain(fileId(upload.key));
    expect(await openMultipartUploads(upload.key)).toBe(0);
    expect((await quota(erin)).reservedBytes).toBe(0);
    const [row] = await db.sql`select status from uploads where id = ${fileId(upload.key)}`;
    expect(row!.status).toBe('expired');
  });

  it('uploads a small file with a presigned POST, then confirms it', async () => {
    const bytes = Buffer.from('a small file straight to the bucket\n');
    const params = new URLSearchParams({ filename: 'note.txt', type: 'text/plain', 'metadata[name]': 'note.txt', 'metadata[project]': 'xmas' });
    const response = await api('GET', `/s3/params?${params}`, alice);
    expect(response.status, await response.clone().text()).toBe(200);
    const { method, url, fields } = (await response.json()) as { method: string; url: string; fields: Record<string, string> };
    expect(method).toBe('POST');
    expect(fields.key).toMatch(/^direct\/[0-9a-f]{16}\/[0-9a-f]{32}$/);

    // Confirming before the bytes are there changes nothing.
    expect((await api('POST', '/s3/confirm', alice, { key: fields.key })).status).toBe(409);

    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', new Blob([new Uint8Array(bytes)], { type: 'text/plain' }), 'note.txt');
    const posted = await fetch(url, { method: 'POST', body: form });
    expect(posted.status).toBeLessThan(300);

    const confirmed = await api('POST', '/s3/confirm', alice, { key: fields.key });
    expect(confirmed.status, await confirmed.clone().text()).toBe(200);
    const { fileId: id } = (await confirmed.json()) as { fileId: string };
    const record = await waitForFinal(app.url, id, { headers: alice });
    expect(record).toMatchObject({ status: 'ready', size: bytes.length, transport: 's3-direct', filename: 'note.txt' });
    expect(record.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it("signs @uppy/aws-s3's signRequest requests for the caller's own upload (JWT mode)", async () => {
    const bytes = randomBytes(3000);
    const sign = async (request: Record<string, unknown>, owner = alice) => {
      const response = await api('POST', '/s3/sign', owner, request);
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as { url: string; key?: string };
    };
    // CreateMultipartUpload: the server creates the record and answers with its own key.
    const created = await sign({ method: 'POST', key: 'uuid-signed.bin', contentType: 'application/octet-stream' });
    expect(created.key).toMatch(/^direct\/[0-9a-f]{16}\/[0-9a-f]{32}$/);
    const key = created.key!;
    const initiated = await fetch(created.url, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' } });
    expect(initiated.status).toBe(200);
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(await initiated.text())![1]!;

    const part = await sign({ method: 'PUT', key, uploadId, partNumber: 1 });
    const put = await fetch(part.url, { method: 'PUT', body: new Uint8Array(bytes) });
    expect(put.status).toBe(200);
    // Bob cannot sign for it, now that it is tied to Alice's record.
    expect((await api('POST', '/s3/sign', bob, { method: 'GET', key, uploadId })).status).toBe(404);

    const completion = await sign({ method: 'POST', key, uploadId });
    const body = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${put.headers.get('etag')}</ETag></Part></CompleteMultipartUpload>`;
    expect((await fetch(completion.url, { method: 'POST', body })).status).toBe(200);

    const confirmed = await api('POST', '/s3/confirm', alice, { key });
    expect(confirmed.status, await confirmed.clone().text()).toBe(200);
    const record = await waitForFinal(app.url, fileId(key), { headers: alice });
    expect(record).toMatchObject({ status: 'ready', size: bytes.length, transport: 's3-direct', filename: 'uuid-signed.bin' });
  });

  it('answers bad input with a 4xx JSON error', async () => {
    const upload = await createMultipart(alice, 'bad.bin');
    const id = encodeURIComponent(upload.uploadId);
    const cases = [
      api('GET', `/s3/multipart/${id}/0${q(upload.key)}`, alice),
      api('GET', `/s3/multipart/${id}/10001${q(upload.key)}`, alice),
      api('GET', `/s3/multipart/${id}/1`, alice),
      complete(alice, upload, []),
      api('POST', '/s3/multipart', alice, { filename: '../../etc/passwd\u0000', type: 'not a type' }),
      api('POST', '/s3/sign', alice, { method: 'PATCH', key: upload.key }),
      api('GET', '/s3/multipart/x', {}),
    ];
    for (const response of await Promise.all(cases)) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBeTruthy();
    }
  });
});
