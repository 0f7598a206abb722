// Two server instances on one PostgreSQL and one storage (a shared directory, or one bucket),
// as behind a plain load balancer: they must behave like one server (on disk, an upload created
// with its length is continued from its record alone: test/integration/tus-info.test.ts).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { startTwoInstances, type StorageKind, type TestServer, type TwoInstances } from '../support/server.js';
import { idOf, sha256 } from '../support/tus.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const MiB = 1024 * 1024;

describe.each<StorageKind>(['file', 's3'])('two instances with %s storage', (storage) => {
  let two: TwoInstances;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    two = await startTwoInstances(storage);
    ({ a, b } = two);
  });
  afterAll(async () => {
    await two?.stop();
  });

  const at = (server: TestServer, location: string) => location.replace(/^http:\/\/[^/]+/, server.url);
  const create = async (server: TestServer, length: number) => {
    const response = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Metadata': `filename ${Buffer.from('multi.bin').toString('base64')}` },
    });
    expect(response.status).toBe(201);
    return response.headers.get('location')!;
  };
  const patch = (url: string, offset: number, body: Buffer) =>
    fetch(url, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.from(body) });

  it('ends byte-identical when chunks alternate between the instances', async () => {
    const chunk = storage === 's3' ? 5 * MiB : MiB;
    const data = randomBytes(5 * chunk + 99);
    const location = await create(a, data.length);
    let offset = 0;
    for (let i = 0; offset < data.length; i++) {
      const server = i % 2 === 0 ? b : a;
      const head = await fetch(at(server, location), { method: 'HEAD', headers: TUS });
      expect(Number(head.headers.get('upload-offset'))).toBe(offset);
      const body = data.subarray(offset, offset + chunk);
      const response = await patch(at(server, location), offset, body);
      expect(response.status).toBe(204);
      offset = Number(response.headers.get('upload-offset'));
    }
    const record = await waitForFinal(b.url, idOf(location));
    expect(record.status).toBe('ready');
    expect(record.sha256).toBe(sha256(data));
  });

  it('never interleaves two simultaneous PATCHes on one upload through different instances', async () => {
    const data = randomBytes(8 * MiB);
    const location = await create(a, data.length);

    // Two clients send the same upload at the same time, slowly, one through each instance.
    const slowPatch = (server: TestServer) =>
      new Promise<{ status: number; offset: number | null }>((resolve, reject) => {
        const request = http.request(at(server, location), {
          method: 'PATCH',
          headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(data.length) },
        });
        let sent = 0;
        const timer = setInterval(() => {
          if (sent >= data.length || request.destroyed) return clearInterval(timer);
          const piece = data.subarray(sent, sent + 128 * 1024);
          sent += piece.length;
          request.write(piece);
          if (sent >= data.length) request.end();
        }, 20);
        request.on('response', (res) => {
          clearInterval(timer);
          res.resume();
          resolve({ status: res.statusCode ?? 0, offset: res.headers['upload-offset'] ? Number(res.headers['upload-offset']) : null });
          request.destroy();
        });
        request.on('error', (error) => {
          clearInterval(timer);
          // A request the server cut short (it handed the upload to the other one) is fine.
          resolve({ status: 0, offset: null });
          void error;
        });
        void reject;
      });
    const [first, second] = await Promise.all([slowPatch(a), slowPatch(b)]);
    // One of them holds the upload's lock and writes (asked by the other to wrap up, it saves what
    // it has and answers 204); the other waits for the lock, then finds the offset moved: 409
    // with the current offset. Never both writing at offset 0.
    const results = [first, second].sort((x, y) => x.status - y.status);
    expect(results.map((r) => r.status)).toEqual([204, 409]);
    expect(results[1]!.offset).toBe(results[0]!.offset);

    // Whatever happened, the stored bytes are an exact prefix of the data: finish and compare.
    const head = await fetch(at(a, location), { method: 'HEAD', headers: TUS });
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBeGreaterThan(0);
    if (offset < data.length) expect((await patch(at(b, location), offset, data.subarray(offset))).status).toBe(204);
    const record = await waitForFinal(a.url, idOf(location));
    expect(record.sha256).toBe(sha256(data));
  });

  it('a deferred length declared through one instance is what the other sees, before and after', async () => {
    const data = randomBytes(3 * MiB + 7);
    const created = await fetch(`${a.url}/files`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Defer-Length': '1', 'Upload-Metadata': `filename ${Buffer.from('later.bin').toString('base64')}` },
    });
    expect(created.status).toBe(201);
    const location = created.headers.get('location')!;
    expect((await patch(at(a, location), 0, data.subarray(0, MiB))).status).toBe(204);
    const before = await fetch(at(a, location), { method: 'HEAD', headers: TUS });
    expect(before.headers.get('upload-defer-length')).toBe('1');
    expect(before.headers.get('upload-length')).toBeNull();

    // b declares the length; a, which saw the upload without one, must now see it.
    const declared = await fetch(at(b, location), {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': String(MiB), 'Upload-Length': String(data.length), 'Content-Type': 'application/offset+octet-stream' },
      body: Buffer.from(data.subarray(MiB, 2 * MiB)),
    });
    expect(declared.status, await declared.text()).toBe(204);
    const after = await fetch(at(a, location), { method: 'HEAD', headers: TUS });
    expect(after.headers.get('upload-length')).toBe(String(data.length));
    expect(after.headers.get('upload-defer-length')).toBeNull();
    expect(Number(after.headers.get('upload-offset'))).toBe(2 * MiB);
    const last = await patch(at(a, location), 2 * MiB, data.subarray(2 * MiB));
    expect(last.status).toBe(204);
    expect(last.headers.get('upload-offset')).toBe(String(data.length));
    const record = await waitForFinal(b.url, idOf(location));
    expect(record.status).toBe('ready');
    expect(record.sha256).toBe(sha256(data));
  });
});
