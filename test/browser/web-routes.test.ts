// How the server serves the built page and its public config, over real HTTP: caching (hashed
// assets for a year, index.html revalidated), precompressed assets, a strict CSP without inline
// code, GET /api/config without a token in jwt mode, and the usual JSON 404 elsewhere.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT, serverEnv, startServer, type TestServer } from '../support/server.js';
import { buildPage } from './browser.js';

describe('the upload page and /api/config', () => {
  let db: TestDatabase;
  let server: TestServer;
  let script: string;
  let style: string;

  beforeAll(async () => {
    await buildPage();
    const assets = await readdir(path.join(ROOT, 'web/dist/assets'));
    script = assets.find((name) => /^app-[A-Z0-9]+\.js$/.test(name))!;
    style = assets.find((name) => /^app-[A-Z0-9]+\.css$/.test(name))!;
    db = await createTestDatabase();
    server = await startServer(
      await serverEnv({
        databaseUrl: db.url,
        storage: 'file',
        extra: jwtEnv({ ALLOWED_KINDS: 'fseq,audio,other', MAX_UPLOAD_SIZE: '300MB' }),
      }),
    );
  });

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('serves index.html at / with no-cache and a strict CSP, referencing only its own hashed assets', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    expect(html).toContain(`<script type="module" src="assets/${script}" integrity="sha384-`);
    expect(html).toContain(`href="assets/${style}"`);
    // No inline code and nothing from another origin.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('serves hashed assets for a year, precompressed when the client accepts it', async () => {
    const plain = await fetch(`${server.url}/assets/${script}`, { headers: { 'Accept-Encoding': 'identity' } });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toMatch(/javascript/);
    expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const bytes = Buffer.from(await plain.arrayBuffer());
    expect(bytes.equals(await readFile(path.join(ROOT, 'web/dist/assets', script)))).toBe(true);

    const { request } = await import('node:http');
    const encoding = await new Promise<string | undefined>((resolve, reject) => {
      request(`${server.url}/assets/${style}`, { headers: { 'Accept-Encoding': 'br, gzip' } }, (res) => {
        res.resume();
        resolve(res.headers['content-encoding']);
      })
        .on('error', reject)
        .end();
    });
    expect(encoding).toBe('br');
  });

  it('answers GET /api/config without a token, even with AUTH_MODE=jwt', async () => {
    const response = await fetch(`${server.url}/api/config`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      authMode: 'jwt',
      tusPath: '/files',
      maxUploadSize: 300_000_000,
      allowedKinds: ['fseq', 'audio', 'other'],
      limits: [
        { kind: 'fseq', extensions: ['.fseq'], maxSize: 300_000_000 },
        { kind: 'audio', extensions: ['.mp3', '.wav', '.ogg', '.flac', '.m4a', '.opus'], maxSize: 200_000_000 },
        { kind: 'other', extensions: [], maxSize: 300_000_000 },
      ],
      // STORAGE=file: no direct-to-bucket uploads.
      directUploads: false,
    });
    // The rest of /api still wants a token.
    expect((await fetch(`${server.url}/api/files`)).status).toBe(401);
    // And the config is documented.
    const docs = (await (await fetch(`${server.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(docs.paths)).toContain('/api/config');
  });

  it('keeps the JSON 404 for anything that is not a file of the build', async () => {
    for (const url of ['/nope', '/assets/app-NOPE.js', '/files/abc', '/../package.json', '/web/dist/index.html']) {
      const response = await fetch(`${server.url}${url}`);
      expect(response.status, url).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ROUTE_NOT_FOUND');
    }
  });
});
