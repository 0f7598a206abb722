// The admin dashboard (/admin) in headless Chromium against the real server (AUTH_MODE=jwt, real
// PostgreSQL, disk storage, the test clamd) with seeded uploads: the tiles show what the analytics
// API answers, both uPlot charts draw their series, the window is chosen with the keyboard, it fits
// a phone, the cleanup dry run reports, and a non-admin token sees "admin only" and no data.
import { randomBytes } from 'node:crypto';
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
});
