// Previews on the upload page, in Debian's Chromium (headless) against the real server with
// AUTH_MODE=jwt, real PostgreSQL and disk storage: an FSEQ, an MP3 and a JPEG uploaded with Uppy
// show their light map, waveform and thumbnail in the file list, loaded with the token through
// blob: URLs under the page's strict Content-Security-Policy (no console errors), and a damaged
// image says why it has none.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from '../support/auth.js';
import { jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT, serverEnv, startServer, type TestServer } from '../support/server.js';
import { artifactPath, buildPage, collectErrors, launchChromium, type LaunchedBrowser } from './browser.js';

const FSEQ = path.join(ROOT, 'test/fixtures/fseq/v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq');
const MP3 = path.join(ROOT, 'test/fixtures/audio/mm_id3v2.3.mp3');

describe('upload page previews in Chromium', () => {
  let db: TestDatabase;
  let server: TestServer;
  let chromium: LaunchedBrowser;
  let workDir: string;

  beforeAll(async () => {
    await buildPage();
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv() }));
    chromium = await launchChromium();
    workDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-previews-'));
  });

  afterAll(async () => {
    await chromium?.close();
    await server?.stop();
    await db?.drop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const fileItem = (page: Page, filename: string): Locator => page.locator('li.file').filter({ has: page.locator('h3', { hasText: filename }) });

  /** The preview <img> of a list item once it has loaded: its kind, decoded size and source scheme. */
  async function loadedPreview(item: Locator) {
    const img = item.locator('img[data-preview]');
    await img.waitFor({ timeout: 30_000 });
    await img.evaluate((node: HTMLImageElement) => node.decode());
    return img.evaluate((node: HTMLImageElement) => ({
      kind: node.dataset.preview,
      naturalWidth: node.naturalWidth,
      naturalHeight: node.naturalHeight,
      scheme: new URL(node.src).protocol,
      alt: node.alt,
    }));
  }

  it('a ready FSEQ, MP3 and JPEG show their light map, waveform and thumbnail; a damaged image says why', async () => {
    const photo = path.join(workDir, 'stage.jpg');
    await writeFile(photo, await sharp({ create: { width: 1200, height: 800, channels: 3, background: '#c04020' } }).jpeg().toBuffer());
    const damaged = path.join(workDir, 'damaged.png');
    const png = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#2040c0' } })
      .composite([{ input: Buffer.from(Array.from({ length: 200 * 100 * 3 }, (_, i) => (i * 37) & 0xff)), raw: { width: 200, height: 100, channels: 3 }, left: 0, top: 0 }])
      .png()
      .toBuffer();
    await writeFile(damaged, png.subarray(0, Math.floor(png.length * 0.6)));

    const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]');
    await page.getByLabel('Token (JWT)').fill(await token('previewer', { expiresIn: '1h' }));
    await page.getByLabel('Token (JWT)').press('Enter');
    await page.getByText('Signed in as previewer.').waitFor();
    await page.locator('#live[data-live="true"]').waitFor();

    await page.locator('.uppy-Dashboard-input').first().setInputFiles([FSEQ, MP3, photo, damaged]);
    await page.getByRole('button', { name: 'Upload 4 files' }).click();

    const fseq = await loadedPreview(fileItem(page, 'v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq'));
    expect(fseq).toMatchObject({ kind: 'lightmap', scheme: 'blob:', naturalHeight: 20 }); // one row per channel
    expect(fseq.naturalWidth).toBeGreaterThan(0);
    expect(fseq.alt).toMatch(/^Light map .* of v1\.0_mf_nkaminski_BBK_Merry_Christmas_Baby\.fseq$/);

    const mp3 = await loadedPreview(fileItem(page, 'mm_id3v2.3.mp3'));
    expect(mp3).toMatchObject({ kind: 'waveform', scheme: 'blob:', naturalHeight: 128 });
    expect(mp3.naturalWidth).toBeGreaterThan(0);

    const jpeg = await loadedPreview(fileItem(page, 'stage.jpg'));
    expect(jpeg).toMatchObject({ kind: 'thumbnail-256', scheme: 'blob:', naturalWidth: 256, naturalHeight: 171, alt: 'Thumbnail of stage.jpg' });

    const broken = fileItem(page, 'damaged.png');
    await broken.locator('.badge-ready').waitFor({ timeout: 30_000 });
    await broken.locator('.file-preview .file-note').waitFor({ timeout: 30_000 });
    await expect(broken.locator('.file-preview .file-note').innerText()).resolves.toMatch(/^No preview: the image cannot be decoded/);
    await expect(broken.locator('img[data-preview]').count()).resolves.toBe(0);

    await page.screenshot({ path: await artifactPath('upload-page-previews.png'), fullPage: true });
    // Nothing was blocked by the Content-Security-Policy, nothing failed.
    expect(errors).toEqual([]);
    await context.close();
  });
});
