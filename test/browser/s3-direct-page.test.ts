// The upload page uploading straight to the bucket (STORAGE=s3, moto with the bucket CORS rule the
// README gives, set by the test) with stock @uppy/aws-s3 in Chromium: through the Companion-compatible
// routes (AUTH_MODE=none) a 30 MB file in parts survives a page reload and resumes from the parts the
// bucket lists; a small file goes in one presigned POST, also with a token (AUTH_MODE=jwt, each S3
// request presigned by POST /api/s3/sign). Each ends ready, byte-identical, none of its bytes
// through the server.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutBucketCorsCommand } from '@aws-sdk/client-s3';
import type { BrowserContext, CDPSession, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv, token } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { s3Client } from '../support/moto.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { buildPage, collectErrors, launchChromium, type LaunchedBrowser } from './browser.js';

const MiB = 2 ** 20;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The rule of the README's "Direct-to-bucket uploads" section, for the page's origin. */
async function allowPageOrigin(env: Record<string, string>, origin: string): Promise<void> {
  await s3Client(env.S3_ENDPOINT!).send(
    new PutBucketCorsCommand({
      Bucket: env.S3_BUCKET!,
      CORSConfiguration: {
        CORSRules: [{ AllowedOrigins: [origin], AllowedMethods: ['GET', 'PUT', 'POST', 'DELETE'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 3000 }],
      },
    }),
  );
}

for (const authMode of ['jwt', 'none'] as const) {
  describe(`upload page straight to the bucket (AUTH_MODE=${authMode})`, () => {
    let db: TestDatabase;
    let server: TestServer;
    let chromium: LaunchedBrowser;
    let workDir: string;
    let bucketOrigin: string;
    const owner = authMode === 'jwt' ? 'direct-seller' : 'local';

    beforeAll(async () => {
      await buildPage();
      db = await createTestDatabase('s3page');
      const env = await serverEnv({ databaseUrl: db.url, storage: 's3', extra: authMode === 'jwt' ? jwtEnv() : {} });
      server = await startServer(env);
      bucketOrigin = new URL(env.S3_ENDPOINT!).origin;
      await allowPageOrigin(env, new URL(server.url).origin);
      chromium = await launchChromium();
      workDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-direct-'));
    });
    afterAll(async () => {
      await chromium?.close();
      await server?.stop();
      await db?.drop();
      if (workDir) await rm(workDir, { recursive: true, force: true });
    });

    async function openPage(context: BrowserContext): Promise<{ page: Page; errors: string[] }> {
      const page = await context.newPage();
      const errors = collectErrors(page);
      await page.goto(server.url);
      await page.waitForSelector('body[data-ready="true"]');
      if (authMode === 'jwt') {
        const field = page.getByLabel('Token (JWT)');
        if (!(await field.inputValue())) {
          await field.fill(await token(owner, { expiresIn: '1h' }));
          await field.press('Enter');
        }
        await page.getByText(`Signed in as ${owner}.`).waitFor();
      }
      await page.locator('#live[data-live="true"]').waitFor();
      // STORAGE=s3: the switch is there, on.
      await expect(page.getByLabel(/Upload straight to the storage bucket/).isChecked()).resolves.toBe(true);
      return { page, errors };
    }

    async function addFile(page: Page, file: string): Promise<void> {
      const input = page.locator('.uppy-Dashboard-input').first();
      if ((await input.count()) === 0) await page.getByRole('button', { name: 'Add more files' }).click();
      await input.setInputFiles(file);
    }

    const fileItem = (page: Page, filename: string) => page.locator('li.file').filter({ has: page.locator('h3', { hasText: filename }) });

    /** Every request the page sends, to the server or to the bucket. */
    function record(context: BrowserContext) {
      const requests: Array<{ method: string; url: URL; phase: string }> = [];
      const state = { phase: 'before reload' };
      context.on('request', (request: Request) => requests.push({ method: request.method(), url: new URL(request.url()), phase: state.phase }));
      return { requests, state };
    }

    async function expectReady(page: Page, filename: string, data: Buffer): Promise<string> {
      const item = fileItem(page, filename);
      await item.locator('.badge-ready').waitFor({ timeout: 60_000 });
      const id = (await item.getAttribute('data-id'))!;
      const headers = authMode === 'jwt' ? await bearer(owner) : {};
      const file = await waitForFinal(server.url, id, { headers });
      expect(file).toMatchObject({ status: 'ready', size: data.length, transport: 's3-direct', filename });
      expect(file.sha256).toBe(sha256(data));
      return id;
    }

    // With signRequest the browser completes the multipart upload with S3 itself, and moto names its
    // answer CompleteMultipartUploadResponse where S3 says CompleteMultipartUploadResult, which
    // @uppy/aws-s3 does not read: that flow is covered against moto by test/integration/s3-direct.test.ts.
    if (authMode === 'none') it('uploads a 30 MB file in parts, interrupted by a reload and resumed from the parts the bucket lists', { timeout: 180_000 }, async () => {
      const data = randomBytes(30 * MiB);
      const file = path.join(workDir, 'big-show.bin');
      await writeFile(file, data);
      const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
      const { requests, state } = record(context);
      const { page, errors } = await openPage(context);

      // About 4 MB/s up, so the reload comes in the middle.
      const throttle = async (cdp: CDPSession) => {
        await cdp.send('Network.enable');
        await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 5, downloadThroughput: -1, uploadThroughput: 4 * MiB });
      };
      await throttle(await context.newCDPSession(page));
      await addFile(page, file);
      await page.getByRole('button', { name: 'Upload 1 file' }).click();

      const partPuts = () => requests.filter((r) => r.method === 'PUT' && r.url.origin === bucketOrigin && r.url.searchParams.has('partNumber'));
      await expect.poll(() => partPuts().length, { timeout: 30_000, interval: 100 }).toBeGreaterThanOrEqual(2);

      state.phase = 'after reload';
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await throttle(await context.newCDPSession(page));
      await page.locator('.uppy-Dashboard-serviceMsg').waitFor();
      await page.locator('.uppy-StatusBar-actionBtn--upload').click();

      await expectReady(page, 'big-show.bin', data);
      // One multipart upload, resumed: the parts were listed after the reload and not all sent again.
      const created = requests.filter((r) => r.method === 'POST' && r.url.pathname === '/api/s3/multipart');
      expect(created).toHaveLength(1);
      const listed = requests.filter((r) => r.phase === 'after reload' && r.method === 'GET' && /^\/api\/s3\/multipart\/[^/]+$/.test(r.url.pathname));
      expect(listed.length).toBeGreaterThan(0);
      const resent = partPuts().filter((r) => r.phase === 'after reload').length;
      expect(resent).toBeLessThan(Math.ceil(data.length / (8 * MiB)));
      // None of the bytes went to the server: no tus requests at all.
      expect(requests.filter((r) => r.url.pathname.startsWith('/files'))).toEqual([]);
      expect(errors.filter((e) => !/net::ERR_ABORTED|ERR_INTERNET_DISCONNECTED/.test(e))).toEqual([]);
      await context.close();
    });

    it('uploads a small file in one presigned POST', async () => {
      const data = Buffer.from('a small show note\n'.repeat(100));
      const file = path.join(workDir, 'notes.txt');
      await writeFile(file, data);
      const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
      const { requests } = record(context);
      const { page, errors } = await openPage(context);
      await addFile(page, file);
      await page.getByRole('button', { name: 'Upload 1 file' }).click();
      await expectReady(page, 'notes.txt', data);
      expect(requests.filter((r) => r.url.origin === bucketOrigin && r.method === 'POST' && !r.url.search)).toHaveLength(1);
      expect(requests.filter((r) => r.method === 'POST' && r.url.pathname === '/api/s3/confirm')).toHaveLength(1);
      // moto answers a POST of a form without the CORS headers S3 sends (so @uppy/aws-s3 may not read its ETag).
      expect(errors.filter((e) => !/Refused to get unsafe header "etag"/.test(e))).toEqual([]);
      await context.close();
    });
  });
}
