// The tus endpoint acts only on the upload it authorised. Every URL that could carry a second id
// (a query string, extra or encoded segments, `;` parameters, a method override) × every method ×
// every state of another owner's upload: the attacker's answer is the same as for an id that does
// not exist, and the victim's record and bytes are untouched afterwards. Requests are sent with
// node:http so that the request target goes out byte for byte (fetch normalises paths).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { idOf, sha256, upload } from '../support/tus.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;

interface Answer {
  status: number;
  code: string | null;
}

function send(base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: hostname, port, method, path, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let code: string | null = null;
          try {
            code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
          } catch {
            code = null;
          }
          resolve({ status: response.statusCode ?? 0, code });
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Ways of putting a victim's id `v` into a request that also names the attacker's own id `b`. */
const URLS: Array<[string, (v: string, b: string) => string]> = [
  ['the plain URL of the victim', (v) => `/files/${v}`],
  ['a query string after the collection', (v) => `/files?/${v}`],
  ['a query string after the attacker\'s own id', (v, b) => `/files/${b}?/${v}`],
  ['a query parameter holding a path', (v, b) => `/files/${b}?x=/files/${v}`],
  ['an extra segment', (v, b) => `/files/${b}/${v}`],
  ['an encoded slash', (v, b) => `/files/${b}%2F${v}`],
  ['an encoded id', (v) => `/files/%${v.charCodeAt(0).toString(16)}${v.slice(1)}`],
  ['a ; parameter', (v, b) => `/files/${b};/${v}`],
  ['a trailing slash', (v) => `/files/${v}/`],
  ['a doubled slash', (v) => `/files//${v}`],
  ['a dot segment', (v, b) => `/files/${b}/../${v}`],
  ['a backslash', (v, b) => `/files/${b}\\${v}`],
];

const METHODS = ['HEAD', 'PATCH', 'DELETE', 'POST'] as const;

describe('the tus endpoint acts only on the upload it authorised', () => {
  let db: TestDatabase;
  let server: TestServer;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  const shared = randomBytes(3000);
  const aliceReady = randomBytes(2000);
  const victims: Record<string, { id: string; check(): Promise<void> }> = {};
  let bobOwn: string;
  let bobShared: string;

  const headOffset = async (id: string, headers: Record<string, string>) =>
    (await fetch(`${server.url}/files/${id}`, { method: 'HEAD', headers: { ...headers, ...TUS } })).headers.get('upload-offset');
  const record = async (id: string, headers: Record<string, string>) =>
    (await (await fetch(`${server.url}/api/files/${id}`, { headers })).json()) as Record<string, unknown>;
  const download = async (id: string, headers: Record<string, string>) => {
    const response = await fetch(`${server.url}/api/files/${id}/content`, { headers });
    expect(response.status).toBe(200);
    return sha256(Buffer.from(await response.arrayBuffer()));
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv() }));
    alice = await bearer('alice');
    bob = await bearer('bob');
    const endpoint = `${server.url}/files`;

    // Alice's upload in progress: 4 of 10 bytes.
    const created = await fetch(endpoint, { method: 'POST', headers: { ...alice, ...TUS, 'Upload-Length': '10', 'Upload-Metadata': metadata('part.bin') } });
    const uploading = idOf(created.headers.get('location')!);
    const patched = await fetch(`${endpoint}/${uploading}`, {
      method: 'PATCH',
      headers: { ...alice, ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: 'abcd',
    });
    expect(patched.status).toBe(204);
    victims.uploading = {
      id: uploading,
      check: async () => {
        expect(await headOffset(uploading, alice)).toBe('4');
        const [row] = await db.sql<{ status: string; size: string; owner_id: string }[]>`select status, size, owner_id from uploads where id = ${uploading}`;
        expect(row).toMatchObject({ status: 'uploading', owner_id: 'alice' });
        expect(Number(row!.size)).toBe(10);
      },
    };

    // Alice's finished file.
    const ready = await upload(aliceReady, { endpoint, filename: 'ready.bin', headers: alice });
    expect((await waitForFinal(server.url, ready, { headers: alice })).status).toBe('ready');
    victims.finished = {
      id: ready,
      check: async () => {
        expect(await record(ready, alice)).toMatchObject({ status: 'ready', size: aliceReady.length, sha256: sha256(aliceReady) });
        expect(await download(ready, alice)).toBe(sha256(aliceReady));
      },
    };

    // Bytes shared through de-duplication: bob uploads them first, alice's copy shares bob's blob.
    bobShared = await upload(shared, { endpoint, filename: 'bob.bin', headers: bob });
    expect((await waitForFinal(server.url, bobShared, { headers: bob })).status).toBe('ready');
    const aliceShared = await upload(shared, { endpoint, filename: 'alice.bin', headers: alice });
    expect((await waitForFinal(server.url, aliceShared, { headers: alice })).status).toBe('ready');
    const blobs = await db.sql<{ blob_sha256: string }[]>`select blob_sha256 from uploads where id in (${bobShared}, ${aliceShared})`;
    expect(new Set(blobs.map((b) => b.blob_sha256)).size).toBe(1);
    victims.shared = {
      id: aliceShared,
      check: async () => {
        expect(await record(aliceShared, alice)).toMatchObject({ status: 'ready', sha256: sha256(shared) });
        expect(await download(aliceShared, alice)).toBe(sha256(shared));
      },
    };

    // Bob's own upload in progress, the "first id" of the two-id URLs.
    const own = await fetch(endpoint, { method: 'POST', headers: { ...bob, ...TUS, 'Upload-Length': '10', 'Upload-Metadata': metadata('own.bin') } });
    bobOwn = idOf(own.headers.get('location')!);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  const headersFor = (method: (typeof METHODS)[number], url: string): { method: string; headers: Record<string, string>; body?: Buffer } => {
    switch (method) {
      case 'HEAD':
        return { method, headers: { ...bob, ...TUS } };
      case 'PATCH':
        return {
          method,
          headers: { ...bob, ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '4' },
          body: Buffer.from('EVIL!!'),
        };
      case 'DELETE':
        return { method, headers: { ...bob, ...TUS } };
      case 'POST':
        // A final upload naming the victim through the smuggling URL.
        return { method, headers: { ...bob, ...TUS, 'Upload-Concat': `final;${url}`, 'Upload-Metadata': metadata('stolen.bin') } };
    }
  };

  for (const state of ['uploading', 'finished', 'shared'] as const) {
    describe(`another owner's ${state} upload`, () => {
      it.each(URLS.flatMap(([label, make]) => METHODS.map((method) => [method, label, make] as const)))(
        '%s through %s answers as for a missing id and changes nothing',
        async (method, _label, make) => {
          const victim = victims[state]!;
          const missing = randomBytes(16).toString('hex');
          const own = state === 'shared' ? bobShared : bobOwn;
          const ask = async (id: string) => {
            const url = make(id, own);
            const request = headersFor(method, url);
            // POST goes to the collection with the URL in Upload-Concat; the others to the URL.
            return send(server.url, request.method, method === 'POST' ? '/files' : url, request.headers, request.body);
          };
          const answer = await ask(victim.id);
          const baseline = await ask(missing);
          expect(answer.status).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          expect(answer).toEqual(baseline);
          await victim.check();
        },
      );

      it('X-HTTP-Method-Override cannot reach it either', async () => {
        const victim = victims[state]!;
        const missing = randomBytes(16).toString('hex');
        for (const [method, override] of [
          ['POST', 'PATCH'],
          ['POST', 'DELETE'],
          ['POST', 'HEAD'],
          ['HEAD', 'DELETE'],
          ['PATCH', 'DELETE'],
          ['DELETE', 'PATCH'],
          ['POST', 'GET'],
        ] as const) {
          const headers = { ...bob, ...TUS, 'X-HTTP-Method-Override': override, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '4' };
          const answer = await send(server.url, method, `/files/${victim.id}`, headers, method === 'HEAD' ? undefined : Buffer.from('EVIL'));
          const baseline = await send(server.url, method, `/files/${missing}`, headers, method === 'HEAD' ? undefined : Buffer.from('EVIL'));
          expect(answer.status, `${method} overridden as ${override}`).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          expect(answer).toEqual(baseline);
        }
        await victim.check();
      });
    });
  }

  it('refuses URLs that could carry a second id with a clear 400, whoever owns the ids', async () => {
    for (const path of [`/files?/${bobOwn}`, `/files/${bobOwn}?x=1`, `/files/${bobOwn}/`, `/files/${bobOwn};a`, `/files/${bobOwn}%2F`, `/files//${bobOwn}`]) {
      const answer = await send(server.url, 'HEAD', path, { ...bob, ...TUS });
      expect(answer.status, path).toBe(400);
      const patch = await send(server.url, 'PATCH', path, { ...bob, ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, Buffer.from('x'));
      expect(patch, path).toEqual({ status: 400, code: 'INVALID_UPLOAD_URL' });
    }
    const override = await send(server.url, 'HEAD', `/files/${bobOwn}`, { ...bob, ...TUS, 'X-HTTP-Method-Override': 'DELETE' });
    expect(override.status).toBe(400);
    const post = await send(server.url, 'PATCH', `/files/${bobOwn}`, { ...bob, ...TUS, 'X-HTTP-Method-Override': 'GET', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, Buffer.from('x'));
    expect(post).toEqual({ status: 400, code: 'INVALID_METHOD_OVERRIDE' });
    // Bob's own upload is still his and untouched.
    expect(await headOffset(bobOwn, bob)).toBe('0');
  });

  it('still serves the owner through the canonical URL and the spec\'s method override', async () => {
    const created = await fetch(`${server.url}/files/`, { method: 'POST', headers: { ...bob, ...TUS, 'Upload-Length': '3', 'Upload-Metadata': metadata('ok.bin') } });
    expect(created.status).toBe(201);
    const id = idOf(created.headers.get('location')!);
    const patched = await send(
      server.url,
      'POST',
      `/files/${id}`,
      { ...bob, ...TUS, 'X-HTTP-Method-Override': 'PATCH', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      Buffer.from('abc'),
    );
    expect(patched).toEqual({ status: 204, code: null });
    expect((await waitForFinal(server.url, id, { headers: bob })).status).toBe('ready');
  });

  it('removes shared bytes only with their last reference', async () => {
    // Bob deletes his copy of the shared bytes through the files API: alice's copy keeps them.
    const response = await fetch(`${server.url}/api/files/${bobShared}`, { method: 'DELETE', headers: bob });
    expect(response.status).toBe(204);
    await victims.shared!.check();
    const [blob] = await db.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(shared)}`;
    expect(blob!.ref_count).toBe(1);
  });
});
