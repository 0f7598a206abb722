// The admin dashboard (/admin) in headless Chromium against the real server (AUTH_MODE=jwt, real
// PostgreSQL, disk storage, the test clamd) with seeded uploads: the tiles show what the analytics
// API answers, both uPlot charts draw their series, the window is chosen with the keyboard, it fits
// a phone, the cleanup dry run reports, a non-admin token sees "admin only" and no data, and any
// owner's files are found by id or sha256.
import { createHash, randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv, token } from '../support/auth.js';
import { eicar } from '../support/clamd.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';
import { artifactPath, buildPage, collectErrors, launchChromium, unlabelledControls, type LaunchedBrowser } from './browser.js';

describe('admin dashboard in Chromium', () => {
  let db: TestDatabase;
  let server: TestServer;
  let chromium: LaunchedBrowser;
  let adminHeaders: Record<string, string>;

  beforeAll(async () => {
    await buildPage();
    db = await createTestDatabase();
    server = await startServer(
      await serverEnv({
        databaseUrl: db.url,
        storage: 'file',
        extra: jwtEnv({ CLAMAV_HOST: inject('clamdHost'), CLAMAV_PORT: String(inject('clamdPort')) }),
      }),
    );
    chromium = await launchChromium();
    adminHeaders = await bearer('ops', { role: 'admin' });
    // Seed: ready files of two owners and one infected file.
    for (const [owner, data] of [
      ['alice', randomBytes(40_000)],
      ['alice', randomBytes(10_000)],
      ['bob', randomBytes(25_000)],
      ['bob', eicar()],
    ] as const) {
      const headers = await bearer(owner);
      await waitForFinal(server.url, await upload(Buffer.from(data), { endpoint: `${server.url}/files`, filename: 'seed.bin', headers }), { headers });
    }
  });

  afterAll(async () => {
    await chromium?.close();
    await server?.stop();
    await db?.drop();
  });

  async function openWith(jwt: string): Promise<{ page: Page; errors: string[] }> {
    const page = await chromium.browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = collectErrors(page);
    const response = await page.goto(`${server.url}/admin`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('#token').fill(jwt);
    await page.locator('#token').press('Enter');
    return { page, errors };
  }

  /** Pixels of the charts' series colour (#2f6fde) on a canvas: the line and points were drawn. */
  const seriesPixels = (page: Page, selector: string) =>
    page.$eval(selector, (canvas) => {
      const context = (canvas as HTMLCanvasElement).getContext('2d')!;
      const { data } = context.getImageData(0, 0, (canvas as HTMLCanvasElement).width, (canvas as HTMLCanvasElement).height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i]! - 47) < 12 && Math.abs(data[i + 1]! - 111) < 12 && Math.abs(data[i + 2]! - 222) < 12 && data[i + 3]! > 200) count++;
      }
      return count;
    });

  it('shows what the analytics API answers, in tiles, charts and tables', async () => {
    const { page, errors } = await openWith(await token('ops', { role: 'admin' }));
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    await page.locator('#updated').filter({ hasText: 'Updated' }).waitFor();

    const end = new Date();
    const start = new Date(end.getTime() - 86_400_000);
    const query = `start=${start.toISOString()}&end=${end.toISOString()}`;
    const stats = (await (await fetch(`${server.url}/api/admin/analytics/uploads?${query}`, { headers: adminHeaders })).json()) as {
      total: number;
      successRate: number;
      byStatus: Record<string, number>;
    };
    expect(stats.total).toBe(4);
    expect(await page.locator('#tile-total').textContent()).toBe(String(stats.total));
    expect(await page.locator('#tile-success').textContent()).toBe(`${(stats.successRate * 100).toFixed(1)} %`);
    expect(await page.locator('#tile-infected').textContent()).toBe(String(stats.byStatus.infected));
    const top = (await (await fetch(`${server.url}/api/admin/analytics/top-uploaders?${query}`, { headers: adminHeaders })).json()) as {
      owners: Array<{ ownerId: string }>;
    };
    expect(await page.locator('#uploaders tbody td:first-child').allTextContents()).toEqual(top.owners.map((o) => o.ownerId));
    expect(await page.locator('#scans tbody').textContent()).toContain('infected1');

    for (const chart of ['#chart-uploads canvas', '#chart-bytes canvas']) expect(await seriesPixels(page, chart), chart).toBeGreaterThan(20);
    await page.screenshot({ path: await artifactPath('admin-dashboard.png'), fullPage: true });

    // Keyboard: the window is a radio group moved with the arrow keys.
    await page.locator('#windows [aria-checked="true"]').focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.locator('#windows [aria-checked="true"]').getAttribute('data-window')).toBe('7d');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.window)).toBe('7d');
    expect(await unlabelledControls(page)).toEqual([]);

    // The cleanup dry run shows its report and changes nothing.
    await page.locator('#cleanup-dry').click();
    await page.locator('#cleanup-report').filter({ hasText: '"dryRun": true' }).waitFor();

    // A phone: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#updated').filter({ hasText: 'Updated' }).waitFor();
    const tooWide = await page.evaluate(() =>
      Array.from(document.querySelectorAll('body *'))
        .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1 && !element.closest('.chart'))
        .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}`),
    );
    expect(tooWide).toEqual([]);
    await page.screenshot({ path: await artifactPath('admin-dashboard-phone.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a non-admin token sees "admin only" and no data', async () => {
    const { page } = await openWith(await token('alice'));
    await page.locator('#admin-only').waitFor({ state: 'visible' });
    expect(await page.locator('#admin-only').textContent()).toContain('Admin only');
    expect(await page.locator('#dashboard').isVisible()).toBe(false);
    expect(await page.locator('#tile-total').textContent()).toBe('–');
    await page.screenshot({ path: await artifactPath('admin-dashboard-not-admin.png') });
    await page.close();
  });

  it("finds any owner's files by sha256 or id (the lookup API, and the dashboard's form)", async () => {
    const bytes = randomBytes(30_000);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const ids: string[] = [];
    for (const owner of ['carol', 'dave']) {
      const headers = await bearer(owner);
      const id = await upload(bytes, { endpoint: `${server.url}/files`, filename: `${owner}.bin`, headers });
      await waitForFinal(server.url, id, { headers });
      ids.push(id);
    }
    const lookup = (query: string, headers = adminHeaders) => fetch(`${server.url}/api/admin/files?${query}`, { headers });
    const bySha = (await (await lookup(`sha256=${sha256.toUpperCase()}`)).json()) as { files: Array<{ id: string; ownerId: string; sha256: string }> };
    expect(bySha.files.map((f) => f.ownerId).sort()).toEqual(['carol', 'dave']);
    const byId = (await (await lookup(`id=${ids[0]}`)).json()) as { files: Array<{ id: string; ownerId: string }> };
    expect(byId.files).toEqual([expect.objectContaining({ id: ids[0], ownerId: 'carol', sha256 })]);
    expect((await (await lookup(`id=${'0'.repeat(32)}`)).json())).toEqual({ files: [] });
    // Exactly one of id and sha256, well-formed; admins only.
    for (const query of ['', `id=${ids[0]}&sha256=${sha256}`, 'sha256=abc', 'id=../x']) {
      const response = await lookup(query);
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBeTruthy();
    }
    expect((await lookup(`sha256=${sha256}`, await bearer('carol'))).status).toBe(403);

    const { page, errors } = await openWith(await token('ops', { role: 'admin' }));
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    await page.locator('#lookup-query').fill(sha256);
    await page.locator('#lookup-query').press('Enter');
    await page.locator('#lookup-status').filter({ hasText: '2 found' }).waitFor();
    expect((await page.locator('#lookup-results tbody td:nth-child(2)').allTextContents()).sort()).toEqual(['carol', 'dave']);
    await page.locator('#lookup-query').fill('not a digest');
    await page.locator('#lookup-query').press('Enter');
    await page.locator('#lookup-status').filter({ hasText: 'Enter a file id' }).waitFor();
    expect(await page.locator('#lookup-results').isVisible()).toBe(false);
    expect(await unlabelledControls(page)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
