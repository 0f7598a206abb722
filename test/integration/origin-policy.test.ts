// Who may talk to the server and who may read its answers (src/http/origin-policy.ts), over real
// HTTP: with AUTH_MODE=none only loopback names and PUBLIC_URL's host are answered (DNS rebinding)
// and only the server's own origin, PUBLIC_URL's and CORS_ORIGINS may read (a foreign page may not
// read files or listings, nor make uploads); with AUTH_MODE=jwt any origin may read, without
// credentials. In every mode the Host header must be a valid host, because Location is built from it.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (Host and Origin included, which fetch will not set). */
function request(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers: { ...headers, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A request head written byte for byte (no Host at all, for instance). */
function rawRequest(base: string, head: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('connect', () => socket.write(head));
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

const errorCode = (answer: Answer) => (JSON.parse(answer.body) as { error: { code: string } }).error.code;
const TUS = { 'Tus-Resumable': '1.0.0' };
const EVIL = 'https://evil.example';
const APP = 'https://app.example';
const PUBLIC = 'https://files.example';
const DATA = Buffer.from('hello, origin policy\n');

function createHeaders(filename = 'note.txt'): Record<string, string> {
  return {
    ...TUS,
    'Upload-Length': String(DATA.length),
    'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
    'Content-Type': 'application/offset+octet-stream',
  };
}

describe('origin policy', () => {
  let db: TestDatabase;
  let jwtDb: TestDatabase;
  let open: TestServer; // AUTH_MODE=none, PUBLIC_URL and CORS_ORIGINS set
  let jwt: TestServer;
  let hostPort: string; // "127.0.0.1:<port>" of the AUTH_MODE=none server
  let fileId: string;
  let uploadPath: string;
  let alice: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase('origin');
    jwtDb = await createTestDatabase('origin_jwt');
    open = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { PUBLIC_URL: PUBLIC, CORS_ORIGINS: `${APP}, http://localhost:5173` } }));
    jwt = await startServer(await serverEnv({ databaseUrl: jwtDb.url, storage: 'file', extra: jwtEnv() }));
    hostPort = new URL(open.url).host;
    alice = await bearer('alice');

    // A ready file to download and an unfinished upload to HEAD, made same-origin-less (curl-like).
    const created = await request(open.url, 'POST', '/files', createHeaders(), DATA);
    expect(created.status, created.body).toBe(201);
    fileId = new URL(created.headers.location!).pathname.split('/').pop()!;
    expect((await waitForFinal(open.url, fileId)).status).toBe('ready');
    const unfinished = await request(open.url, 'POST', '/files', { ...TUS, 'Upload-Length': '100', 'Upload-Metadata': `filename ${Buffer.from('later.txt').toString('base64')}` });
    expect(unfinished.status, unfinished.body).toBe(201);
    uploadPath = new URL(unfinished.headers.location!).pathname;
  });

  afterAll(async () => {
    await open?.stop();
    await jwt?.stop();
    await db?.drop();
    await jwtDb?.drop();
  });

  describe('AUTH_MODE=none', () => {
    it('gives a foreign origin no Access-Control-Allow-Origin on listings, records and downloads', async () => {
      for (const path of ['/api/files', `/api/files/${fileId}`, `/api/files/${fileId}/content`, '/api/me/quota']) {
        const answer = await request(open.url, 'GET', path, { Origin: EVIL });
        expect(answer.status, `${path}: ${answer.body}`).toBe(200);
        expect(answer.headers['access-control-allow-origin'], path).toBeUndefined();
        expect(answer.headers['access-control-allow-credentials'], path).toBeUndefined();
      }
    });

    it('gives a foreign origin no Access-Control-Allow-Origin from the tus endpoint (HEAD, OPTIONS preflight)', async () => {
      const head = await request(open.url, 'HEAD', uploadPath, { ...TUS, Origin: EVIL });
      expect(head.status).toBe(200);
      expect(head.headers['access-control-allow-origin']).toBeUndefined();
      const preflight = await request(open.url, 'OPTIONS', '/files', { Origin: EVIL, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'tus-resumable, upload-length' });
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      const apiPreflight = await request(open.url, 'OPTIONS', '/api/files', { Origin: EVIL, 'Access-Control-Request-Method': 'GET' });
      expect(apiPreflight.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('refuses state-changing requests from a foreign origin (403 ORIGIN_NOT_ALLOWED), touching nothing', async () => {
      const countUploads = async () => (await db.sql<{ n: number }[]>`select count(*)::int as n from uploads`)[0]!.n;
      const before = await countUploads();
      const post = await request(open.url, 'POST', '/files', { ...createHeaders(), Origin: EVIL }, DATA);
      expect(post.status, post.body).toBe(403);
      expect(errorCode(post)).toBe('ORIGIN_NOT_ALLOWED');
      expect(post.headers['access-control-allow-origin']).toBeUndefined();
      const del = await request(open.url, 'DELETE', `/api/files/${fileId}`, { Origin: EVIL });
      expect(del.status).toBe(403);
      const sandboxed = await request(open.url, 'DELETE', uploadPath, { ...TUS, Origin: 'null' });
      expect(sandboxed.status).toBe(403);
      expect(await countUploads()).toBe(before);
      expect((await request(open.url, 'GET', `/api/files/${fileId}`)).status).toBe(200);
      expect((await request(open.url, 'HEAD', uploadPath, TUS)).status).toBe(200);
    });

    it('lets the same origin, PUBLIC_URL and CORS_ORIGINS read, never with credentials', async () => {
      for (const origin of [`http://${hostPort}`, PUBLIC, APP, 'http://localhost:5173']) {
        const list = await request(open.url, 'GET', '/api/files', { Origin: origin });
        expect(list.status).toBe(200);
        expect(list.headers['access-control-allow-origin'], origin).toBe(origin);
        expect(list.headers['access-control-allow-credentials'], origin).toBeUndefined();
        expect(String(list.headers.vary)).toMatch(/origin/i);
        const head = await request(open.url, 'HEAD', uploadPath, { ...TUS, Origin: origin });
        expect(head.headers['access-control-allow-origin'], origin).toBe(origin);
        expect(head.headers['access-control-allow-credentials'], origin).toBeUndefined();
      }
      const created = await request(open.url, 'POST', '/files', { ...createHeaders('same-origin.txt'), Origin: `http://${hostPort}` }, DATA);
      expect(created.status, created.body).toBe(201);
      expect(created.headers['access-control-allow-origin']).toBe(`http://${hostPort}`);
      const preflight = await request(open.url, 'OPTIONS', '/api/files/x', { Origin: APP, 'Access-Control-Request-Method': 'DELETE' });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(APP);
      expect(preflight.headers['access-control-allow-methods']).toContain('DELETE');
      expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
      // Look-alikes of an allowed origin are not it.
      for (const origin of ['https://app.example.evil.example', 'http://app.example', 'https://app.example:8443', `https://${hostPort}`]) {
        const answer = await request(open.url, 'GET', '/api/files', { Origin: origin });
        expect(answer.headers['access-control-allow-origin'], origin).toBeUndefined();
      }
    });

    it('answers only loopback names and PUBLIC_URL\'s host; any other Host is 421 HOST_NOT_ALLOWED (DNS rebinding)', async () => {
      const port = new URL(open.url).port;
      for (const host of [hostPort, `localhost:${port}`, 'localhost', `[::1]:${port}`, '127.0.0.1', 'files.example', `FILES.example:${port}`]) {
        const answer = await request(open.url, 'GET', '/api/files', { Host: host });
        expect(answer.status, `${host}: ${answer.body}`).toBe(200);
      }
      for (const host of [`evil.example:${port}`, 'evil.example', `192.168.1.20:${port}`, 'localhost.evil.example', 'app.example', `127.0.0.2:${port}`]) {
        for (const [method, path, headers] of [
          ['GET', '/api/files', {}],
          ['GET', `/api/files/${fileId}/content`, {}],
          ['GET', '/', {}],
          ['HEAD', uploadPath, TUS],
          ['POST', '/files', createHeaders('rebound.txt')],
        ] as const) {
          // Same-origin as far as the (rebound) page is concerned: Origin matches the foreign Host.
          const answer = await request(open.url, method, path, { ...headers, Host: host, Origin: `http://${host}` }, method === 'POST' ? DATA : undefined);
          expect(answer.status, `${method} ${path} Host ${host}`).toBe(421);
          if (method !== 'HEAD') {
            expect(errorCode(answer)).toBe('HOST_NOT_ALLOWED');
            expect(answer.body).not.toContain(host);
          }
          expect(answer.headers['access-control-allow-origin']).toBeUndefined();
        }
      }
      // Probes answer whatever name an orchestrator uses.
      expect((await request(open.url, 'GET', '/healthz', { Host: `10.1.2.3:${port}` })).status).toBe(200);
    });
  });

  describe('AUTH_MODE=jwt', () => {
    it('lets any origin read with a bearer token, never with credentials', async () => {
      const created = await request(jwt.url, 'POST', '/files', { ...createHeaders('cors.txt'), ...alice, Origin: EVIL }, DATA);
      expect(created.status, created.body).toBe(201);
      expect(created.headers['access-control-allow-origin']).toBe(EVIL);
      const id = new URL(created.headers.location!).pathname.split('/').pop()!;
      const list = await request(jwt.url, 'GET', '/api/files', { ...alice, Origin: EVIL });
      expect(list.status).toBe(200);
      expect(list.headers['access-control-allow-origin']).toBe(EVIL);
      const record = await request(jwt.url, 'GET', `/api/files/${id}`, { ...alice, Origin: EVIL });
      expect(record.headers['access-control-allow-origin']).toBe(EVIL);
      const head = await request(jwt.url, 'HEAD', `/files/${id}`, { ...TUS, ...alice, Origin: EVIL });
      expect([EVIL, '*']).toContain(head.headers['access-control-allow-origin']);
      const preflight = await request(jwt.url, 'OPTIONS', '/api/files', { Origin: EVIL, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(EVIL);
      for (const answer of [created, list, record, head, preflight]) expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
      // Without a token a foreign page still reads nothing but the refusal.
      expect((await request(jwt.url, 'GET', '/api/files', { Origin: EVIL })).status).toBe(401);
    });

    it('answers any valid Host name, and builds Location from it', async () => {
      const created = await request(jwt.url, 'POST', '/files', { ...createHeaders('named.txt'), ...alice, Host: 'uploads.example:8080' }, DATA);
      expect(created.status, created.body).toBe(201);
      expect(created.headers.location).toMatch(/^http:\/\/uploads\.example:8080\/files\/[^/]+$/);
    });
  });

  describe('Host syntax (every mode)', () => {
    it.each([
      ['a"b<c>'],
      ['evil.example/path'],
      ['user@evil.example'],
      ['evil.example:99999'],
      ['evil.example:'],
      ['evil.example:80:80'],
      ['[::1'],
      ['[not-ipv6]:80'],
      ["o'neil.example"],
      ['a b'],
      ['%65vil.example'],
    ])('refuses Host %j with 400 INVALID_HOST and no Location', async (host) => {
      for (const server of [open, jwt]) {
        const answer = await request(server.url, 'POST', '/files', { ...createHeaders('bad-host.txt'), ...alice, Host: host }, DATA);
        expect(answer.status, answer.body).toBe(400);
        expect(errorCode(answer)).toBe('INVALID_HOST');
        expect(answer.headers.location).toBeUndefined();
        expect(answer.body).not.toContain(host);
      }
    });

    it('refuses a request without Host with JSON 400 INVALID_HOST', async () => {
      for (const server of [open, jwt]) {
        const raw = await rawRequest(server.url, 'GET /api/files HTTP/1.1\r\nConnection: close\r\n\r\n');
        expect(raw).toMatch(/^HTTP\/1\.1 400 /);
        expect(raw).toMatch(/content-type: application\/json/i);
        expect(raw).toContain('"INVALID_HOST"');
      }
    });

    it('answers what the router and the HTTP parser refuse with JSON that repeats nothing', async () => {
      const marker = 'zz-marker-<b>';
      const cases: Array<[string, number, string]> = [
        [`DELETE /api/files/${'m'.repeat(300)}${encodeURIComponent(marker)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 414, 'URI_TOO_LONG'],
        [`GET /api/files/%zz${encodeURIComponent(marker)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 400, 'INVALID_URL'],
        [`GET /api/files?status=${'m'.repeat(9000)}${encodeURIComponent(marker)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 414, 'URI_TOO_LONG'],
        [`GET /${encodeURIComponent(marker).repeat(2000)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 431, 'REQUEST_HEADERS_TOO_LARGE'],
        [`POST /files HTTP/1.1\r\nHost: localhost\r\nX-Marker: ${marker}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'MALFORMED_REQUEST'],
        [`GET /files HTTP/1.1\r\nHost: localhost\r\nX-Marker: ${marker}\u0001\r\n\r\n`, 400, 'MALFORMED_REQUEST'],
      ];
      for (const [head, status, code] of cases) {
        const raw = await rawRequest(open.url, head);
        const [top, body] = [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
        expect(top, head.slice(0, 60)).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        expect(top).toMatch(/content-type: application\/json/i);
        expect((JSON.parse(body) as { error: { code: string; message: string } }).error.code, body).toBe(code);
        expect(body).not.toContain('zz-marker');
        expect(body).not.toContain('mmmm');
      }
    });

    it('does not repeat the path in a 404', async () => {
      const answer = await request(open.url, 'GET', '/nothing-here-<script>alert(1)</script>');
      expect(answer.status).toBe(404);
      expect(errorCode(answer)).toBe('ROUTE_NOT_FOUND');
      expect(answer.body).not.toContain('nothing-here');
    });
  });
});
