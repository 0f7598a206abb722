// Headless Chromium from Debian (`apt-get install chromium`), driven by playwright-core. No browser
// is ever downloaded: the executable is the system one, and the flags keep it off the network.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { ROOT } from '../support/server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');

export interface LaunchedBrowser {
  browser: Browser;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<LaunchedBrowser> {
  // Playwright starts Chromium with a fresh temporary --user-data-dir of its own (and removes it on
  // close): nothing remembered between runs, nothing synced.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--disable-dev-shm-usage',
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
    },
  };
}

/** Builds the page (web/ → web/dist) the way `npm run build:web` does. */
export async function buildPage(): Promise<void> {
  await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts', 'build-web.mjs')], { cwd: ROOT });
}

export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

/** Every console error and uncaught exception of a page, as text. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  return errors;
}

/**
 * Controls without an accessible name: inputs, selects and textareas need a <label>, aria-label
 * or aria-labelledby; buttons and links need text or a label. Hidden controls are skipped.
 */
export async function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    const visible = (element: Element) => {
      if (element.closest('[hidden], [aria-hidden="true"], [inert]')) return false;
      const style = getComputedStyle(element);
      const box = element.getBoundingClientRect();
      return style.display !== 'none' && style.visibility !== 'hidden' && box.width > 0 && box.height > 0;
    };
    const describe = (element: Element) =>
      `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${element.className ? `.${String(element.className).split(' ').join('.')}` : ''}`;
    for (const element of Array.from(document.querySelectorAll('input, select, textarea'))) {
      if ((element as HTMLInputElement).type === 'hidden' || !visible(element)) continue;
      const labelled =
        element.getAttribute('aria-label')?.trim() ||
        element.getAttribute('aria-labelledby')?.trim() ||
        ((element as HTMLInputElement).labels?.length ?? 0) > 0 ||
        element.getAttribute('title')?.trim();
      if (!labelled) problems.push(describe(element));
    }
    for (const element of Array.from(document.querySelectorAll('button, a[href], [role="button"]'))) {
      if (!visible(element)) continue;
      const named =
        element.getAttribute('aria-label')?.trim() ||
        element.getAttribute('aria-labelledby')?.trim() ||
        element.getAttribute('title')?.trim() ||
        element.textContent?.trim();
      if (!named) problems.push(describe(element));
    }
    return problems;
  });
}
