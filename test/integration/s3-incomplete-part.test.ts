// Chunks smaller than an S3 part live in `<id>.part` between PATCHes. @tus/s3-store deletes that
// object before uploading its bytes again with the next chunk, so an S3 failure in between lost
// bytes already acknowledged. These tests put a fault-injecting HTTP proxy between the server
// and moto and check that acknowledged bytes survive every failure point, that a `.part` whose
// bytes already went into a part is never counted twice, and that every upload still completes
// byte-identical.
import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { s3Client } from '../support/moto.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';
import { isIncompletePartKey as isPartKey, isUploadPart, s3FaultProxy as faultyProxy } from '../support/s3-fault-proxy.js';

const MiB = 2 ** 20;
const TUS = { 'Tus-Resumable': '1.0.0' };

describe('S3 incomplete parts (<id>.part)', () => {
  let db: TestDatabase;
  let proxy: Awaited<ReturnType<typeof faultyProxy>>;
  let app: TestServer;
  let bucket: string;
  let motoEndpoint: string;

  beforeAll(async () => {
    db = await createTestDatabase('s3part');
    const env = await serverEnv({ databaseUrl: db.url, storage: 's3', extra: { S3_PART_SIZE: '5MiB' } });
    bucket = env.S3_BUCKET!;
    motoEndpoint = env.S3_ENDPOINT!;
    proxy = await faultyProxy(motoEndpoint);
    app = await startServer({ ...env, S3_ENDPOINT: proxy.url });
  });
  afterAll(async () => {
    await app?.stop();
    await proxy?.close();
    await db?.drop();
  });

  async function create(length: number): Promise<string> {
    const response = await fetch(`${app.url}/files`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Metadata': `filename ${Buffer.from('p.bin').toString('base64')}` },
    });
    expect(response.status).toBe(201);
    return response.headers.get('location')!;
  }

  async function patch(url: string, offset: number, body: Buffer): Promise<Response> {
    return fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
      body: new Uint8Array(body),
    });
  }

  /** A PATCH whose body trickles in (64 KiB every few ms), as from a real network. */
  async function slowPatch(url: string, offset: number, body: Buffer): Promise<Response> {
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at >= body.length) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 2));
        controller.enqueue(new Uint8Array(body.subarray(at, at + 64 * 1024)));
        at += 64 * 1024;
      },
    });
    return fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(body.length) },
      body: stream,
      duplex: 'half',
    } as RequestInit);
  }

  async function offsetOf(url: string): Promise<number> {
    const response = await fetch(url, { method: 'HEAD', headers: TUS });
    expect(response.status).toBe(200);
    return Number(response.headers.get('upload-offset'));
  }

  async function expectStored(url: string, data: Buffer) {
    const id = url.split('/').pop()!;
    const record = await waitForFinal(app.url, id);
    expect(record).toMatchObject({ status: 'ready', size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    const download = Buffer.from(await (await fetch(`${app.url}/api/files/${id}/content`)).arrayBuffer());
    expect(download.equals(data)).toBe(true);
  }

  it('grows a .part over several small chunks, then turns it into parts', async () => {
    const data = randomBytes(12 * MiB);
    const url = await create(data.length);
    for (let offset = 0; offset < data.length; offset += 2 * MiB) {
      expect(await offsetOf(url)).toBe(offset);
      const response = await slowPatch(url, offset, data.subarray(offset, offset + 2 * MiB));
      expect(response.status, await response.text()).toBe(204);
    }
    await expectStored(url, data);
  });

  it('takes concurrent tus-js-client uploads in chunks below the part size, byte-identical', async () => {
    const files = Array.from({ length: 4 }, () => randomBytes(11 * MiB));
    // No retries: a single wrong offset (a .part lost or counted twice) fails the upload.
    const ids = await Promise.all(
      files.map((data, i) => upload(data, { endpoint: `${app.url}/files`, filename: `c-${i}.bin`, chunkSize: 2 * MiB, retryDelays: [] })),
    );
    for (const [i, id] of ids.entries()) await expectStored(`${app.url}/files/${id}`, files[i]!);
  });

  it('keeps acknowledged bytes when S3 fails while the next chunk is being stored', async () => {
    const data = randomBytes(7 * MiB);
    const url = await create(data.length);
    const id = url.split('/').pop()!;
    // 1 MiB: below the part size, so it is stored as <id>.part and acknowledged.
    expect((await patch(url, 0, data.subarray(0, MiB))).status).toBe(204);
    expect(await offsetOf(url)).toBe(MiB);

    // The next 5 MiB would make part 1 out of the stored 1 MiB and 4 MiB of it; S3 refuses parts.
    proxy.fail(isUploadPart);
    const failed = await patch(url, MiB, data.subarray(MiB, 6 * MiB));
    proxy.fail(null);
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toMatch(/^STORAGE_/);
    // @tus/s3-store alone had deleted <id>.part by now: HEAD said 0, the client's first MiB gone.
    expect(await offsetOf(url)).toBe(MiB);
    const head = await s3Client(motoEndpoint).send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }));
    expect(head.ContentLength).toBe(MiB);

    expect((await patch(url, MiB, data.subarray(MiB, 6 * MiB))).status).toBe(204);
    expect(await offsetOf(url)).toBe(6 * MiB);
    expect((await patch(url, 6 * MiB, data.subarray(6 * MiB))).status).toBe(204);
    await expectStored(url, data);
  });

  it('does not count a .part twice when it outlives the part its bytes went into', async () => {
    const data = randomBytes(8 * MiB);
    const url = await create(data.length);
    const id = url.split('/').pop()!;
    expect((await patch(url, 0, data.subarray(0, 2 * MiB))).status).toBe(204);
    const stored = await s3Client(motoEndpoint).send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }));
    expect(stored.Metadata?.['tus-part-before']).toBe('1');

    // 3 MiB more completes part 1 (2 + 3 MiB) exactly, leaving nothing for a new .part; the
    // old .part can then go, but deleting it fails: the state a crash at that moment leaves.
    proxy.fail((req) => req.method === 'DELETE' && isPartKey(req));
    expect((await patch(url, 2 * MiB, data.subarray(2 * MiB, 5 * MiB))).status).toBe(204);
    proxy.fail(null);
    const stale = await s3Client(motoEndpoint).send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }));
    expect(stale.ContentLength).toBe(2 * MiB);
    // Its bytes are in part 1: 5 MiB, not 7.
    expect(await offsetOf(url)).toBe(5 * MiB);

    // The next write drops the stale .part instead of prepending its bytes a second time.
    expect((await patch(url, 5 * MiB, data.subarray(5 * MiB, 6 * MiB))).status).toBe(204);
    const fresh = await s3Client(motoEndpoint).send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }));
    expect(fresh).toMatchObject({ ContentLength: MiB, Metadata: { 'tus-part-before': '2' } });
    expect(await offsetOf(url)).toBe(6 * MiB);
    expect((await patch(url, 6 * MiB, data.subarray(6 * MiB))).status).toBe(204);
    await expectStored(url, data);
    // Completed: no .part left behind.
    const gone = await s3Client(motoEndpoint)
      .send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }))
      .then(() => false)
      .catch(() => true);
    expect(gone).toBe(true);
  });

  it('still reads a .part written before the marker existed (an upgrade mid-upload)', async () => {
    const data = randomBytes(6 * MiB);
    const url = await create(data.length);
    const id = url.split('/').pop()!;
    expect((await patch(url, 0, data.subarray(0, MiB))).status).toBe(204);
    // Rewrite the .part as @tus/s3-store wrote it: the same bytes, no metadata.
    const client = s3Client(motoEndpoint);
    const old = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${id}.part` }));
    const bytes = Buffer.from(await old.Body!.transformToByteArray());
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}.part`, Body: bytes }));
    expect(await offsetOf(url)).toBe(MiB);
    expect((await patch(url, MiB, data.subarray(MiB))).status).toBe(204);
    await expectStored(url, data);
  });
});
