// The admin dashboard (/admin) in headless Chromium against the real server (AUTH_MODE=jwt, real
// PostgreSQL, disk storage, the test clamd) with seeded uploads: the tiles, every uPlot chart (and
// its table of numbers) and every breakdown's bars show what the analytics API answers for the
// page's own window, the window is chosen with the keyboard, it fits a phone, the cleanup dry run
// reports, a non-admin token sees "admin only" and no data, and any owner's files are found by id
// or sha256.
import { createHash, randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv, token } from '../support/auth.js';
import { eicar } from '../support/clamd.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { formatBytes } from '../../web/src/format.js';
import { buildPng } from '../support/fixture-builders.js';
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
    // Seed: ready files of two owners (one content shared by both: de-duplicated), one infected
    // file, one rejected (a PNG named .fseq).
    const shared = randomBytes(25_000);
    for (const [owner, data, filename] of [
      ['alice', randomBytes(40_000), 'seed.bin'],
      ['alice', shared, 'seed.bin'],
      ['bob', shared, 'seed.bin'],
      ['bob', eicar(), 'seed.bin'],
      ['bob', buildPng(), 'not-a-sequence.fseq'],
    ] as const) {
      const headers = await bearer(owner);
      await waitForFinal(server.url, await upload(Buffer.from(data), { endpoint: `${server.url}/files`, filename, headers }), { headers });
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

  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${server.url}${path}`, { headers: adminHeaders });
    expect(response.status, path).toBe(200);
    return (await response.json()) as T;
  };
  /** The window the page asked for, and what it shows, read at one instant (it refreshes itself). */
  const shown = (page: Page) =>
    page.evaluate(() => {
      const cells = (selector: string) =>
        Array.from(document.querySelectorAll(`${selector} tbody tr`)).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? ''));
      const meters = (selector: string) => Array.from(document.querySelectorAll<HTMLMeterElement>(`${selector} meter`)).map((m) => m.value);
      const dashboard = document.getElementById('dashboard')!;
      const tables = ['failures', 'scans', 'uploaders', 'storage-kind', 'storage-owner', 'tiers'];
      return {
        start: dashboard.dataset.start!,
        end: dashboard.dataset.end!,
        uploads: cells('#chart-uploads-numbers'),
        latency: cells('#chart-latency-numbers'),
        success: cells('#chart-success-numbers'),
        dedup: cells('#chart-dedup-numbers'),
        tables: Object.fromEntries(tables.map((id) => [id, { cells: cells(`#${id}`), meters: meters(`#${id}`) }])),
        quarantine: cells('#quarantine'),
      };
    });

  it('shows what the analytics API answers, in tiles, charts and breakdowns', async () => {
    const { page, errors } = await openWith(await token('ops', { role: 'admin' }));
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    await page.locator('#updated').filter({ hasText: 'Updated' }).waitFor();
    const view = await shown(page);
    const query = `start=${encodeURIComponent(view.start)}&end=${encodeURIComponent(view.end)}`;
    expect(Date.parse(view.end) - Date.parse(view.start)).toBe(86_400_000);

    const stats = await api<{ total: number; successRate: number; byStatus: Record<string, number>; scans: Record<string, number> }>(
      `/api/admin/analytics/uploads?${query}`,
    );
    expect(stats.total).toBe(5);
    expect(await page.locator('#tile-total').textContent()).toBe(String(stats.total));
    expect(await page.locator('#tile-success').textContent()).toBe(`${(stats.successRate * 100).toFixed(1)} %`);
    expect(await page.locator('#tile-infected').textContent()).toBe(String(stats.byStatus.infected));

    // Every chart drew its series (the p50 line of the latency chart is the blue one too).
    for (const chart of ['uploads', 'bytes', 'success', 'latency', 'dedup']) {
      expect(await seriesPixels(page, `#chart-${chart} canvas`), chart).toBeGreaterThan(20);
    }
    // The charts' numbers are the series API's for the same window, bucket by bucket.
    const series = await api<{ buckets: Array<{ total: number; succeeded: number; failed: number; successRate: number | null; dedupBytes: number; readyFiles: number; readyP50Ms: number | null }> }>(
      `/api/admin/analytics/series?${query}&buckets=24`,
    );
    expect(view.uploads.map((row) => row.slice(1).map(Number))).toEqual(series.buckets.map((b) => [b.total, b.succeeded, b.failed]));
    expect(view.latency.map((row) => Number(row[1]))).toEqual(series.buckets.map((b) => b.readyFiles));
    expect(series.buckets.reduce((a, b) => a + b.readyFiles, 0)).toBe(3);
    expect(view.success.map((row) => row[1])).toEqual(series.buckets.map((b) => (b.successRate === null ? '–' : `${(b.successRate * 100).toFixed(1)} %`)));
    expect(series.buckets.reduce((a, b) => a + b.dedupBytes, 0)).toBe(25_000);
    expect(view.dedup.map((row) => row[1])).toEqual(series.buckets.map((b) => formatBytes(b.dedupBytes)));

    // Every breakdown has rows and a bar drawn for the largest.
    for (const [id, table] of Object.entries(view.tables)) {
      expect(table.cells.length, id).toBeGreaterThan(0);
      expect(Math.max(...table.meters), id).toBeGreaterThan(0);
      expect(table.meters, id).toHaveLength(table.cells.length);
    }
    const failures = await api<{ reasons: Array<{ status: string; reason: string; count: number }> }>(`/api/admin/analytics/failures?${query}`);
    expect(view.tables.failures!.cells.map((row) => row.slice(0, 2))).toEqual(failures.reasons.map((r) => [`${r.status}: ${r.reason}`, String(r.count)]));
    expect(view.tables.failures!.meters).toEqual(failures.reasons.map((r) => r.count));
    expect(failures.reasons.map((r) => r.status).sort()).toEqual(['infected', 'rejected']);
    expect(Object.fromEntries(view.tables.scans!.cells.map((row) => [row[0], Number(row[1])]))).toEqual(stats.scans);
    const top = await api<{ owners: Array<{ ownerId: string; bytes: number }> }>(`/api/admin/analytics/top-uploaders?${query}`);
    expect(view.tables.uploaders!.cells.map((row) => row[0])).toEqual(top.owners.map((o) => o.ownerId));
    expect(view.tables.uploaders!.meters).toEqual(top.owners.map((o) => o.bytes));
    const storage = await api<{ byKind: Array<{ kind: string; bytes: number }>; byOwner: Array<{ ownerId: string; files: number; bytes: number }> }>(
      '/api/admin/analytics/storage?limit=10',
    );
    expect(view.tables['storage-owner']!.cells.map((row) => [row[0], Number(row[1])])).toEqual(storage.byOwner.map((o) => [o.ownerId, o.files]));
    expect(view.tables['storage-owner']!.meters).toEqual(storage.byOwner.map((o) => o.bytes));
    expect(view.tables['storage-kind']!.meters).toEqual(storage.byKind.map((k) => k.bytes));
    const quarantine = await api<{ files: Array<{ id: string; signature: string }> }>('/api/admin/analytics/quarantine?limit=20');
    expect(quarantine.files).toHaveLength(1);
    expect(view.quarantine.map((row) => [row[0], row[3]])).toEqual(quarantine.files.map((f) => [f.id, f.signature]));
    await page.screenshot({ path: await artifactPath('admin-dashboard.png'), fullPage: true });

    // Keyboard: the window is a radio group moved with the arrow keys; the page asks for that window.
    await page.locator('#windows [aria-checked="true"]').focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.locator('#windows [aria-checked="true"]').getAttribute('data-window')).toBe('7d');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.window)).toBe('7d');
    await expect.poll(async () => (await shown(page)).uploads.length).toBe(28);
    const week = await shown(page);
    expect(Date.parse(week.end) - Date.parse(week.start)).toBe(7 * 86_400_000);
    // A chart's numbers open from the keyboard (Tab to its summary, Enter).
    const summary = page.locator('#chart-latency').locator('xpath=following-sibling::details/summary');
    await summary.focus();
    await page.keyboard.press('Enter');
    await page.locator('#chart-latency-numbers').waitFor({ state: 'visible' });
    expect(await unlabelledControls(page)).toEqual([]);

    // The cleanup dry run shows its report and changes nothing.
    await page.locator('#cleanup-dry').click();
    await page.locator('#cleanup-report').filter({ hasText: '"dryRun": true' }).waitFor();

    // A phone: nothing wider than the screen, no sideways scrolling.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#updated').filter({ hasText: 'Updated' }).waitFor();
    await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const tooWide = () =>
      page.evaluate(() =>
        Array.from(document.querySelectorAll('body *'))
          .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1)
          .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}`),
      );
    // The charts follow their container's new width (a ResizeObserver), so this settles.
    await expect.poll(tooWide).toEqual([]);
    await page.screenshot({ path: await artifactPath('admin-dashboard-phone.png'), fullPage: true });
    await page.locator('#charts-title').locator('xpath=..').screenshot({ path: await artifactPath('admin-dashboard-phone-charts.png') });
    await page.locator('#tables-title').locator('xpath=..').screenshot({ path: await artifactPath('admin-dashboard-phone-breakdowns.png') });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a non-admin token sees "admin only" and no data', async () => {
    const { page } = await openWith(await token('alice'));
    await page.locator('#admin-only').waitFor({ state: 'visible' });
    expect(await page.locator('#admin-only').textContent()).toContain('Admin only');
    expect(await page.locator('#dashboard').isVisible()).toBe(false);
    expect(await page.locator('#tile-total').textContent()).toBe('–');
    for (const table of ['#failures', '#uploaders', '#storage-owner', '#quarantine', '#chart-uploads-numbers']) {
      expect(await page.locator(`${table} tbody tr`).count(), table).toBe(0);
    }
    expect(await page.locator('#chart-uploads canvas').count()).toBe(0);
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
