// Browser tests: Debian's chromium driven by playwright-core (never a downloaded browser), with a fresh
// profile and none of its own network traffic; the dashboard built first when its sources are newer.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from './cli.ts';

export const CHROMIUM = '/usr/bin/chromium';
const WEB = path.join(REPO_ROOT, 'web');

function newest(dir: string): number {
  let latest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(full) : fs.statSync(full).mtimeMs);
  }
  return latest;
}

/** Builds web/dist unless it is newer than every source of the dashboard. */
export function ensureWebBuilt(): void {
  const built = path.join(WEB, 'dist/index.html');
  const sources = Math.max(newest(path.join(WEB, 'src')), ...['index.html', 'vite.config.ts'].map((f) => fs.statSync(path.join(WEB, f)).mtimeMs));
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= sources) return;
  execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/vite'), ['build', WEB, '--logLevel', 'error'], { cwd: REPO_ROOT, stdio: 'pipe' });
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(options: { width?: number; height?: number } = {}): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flags chromium keeps trying to reach Google's hosts.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    acceptDownloads: true,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A screenshot of the whole page as it lays out on a screen that tall: a full-page capture of a scrolled
 * page draws sticky parts (the sidebar, a form's button bar) where the viewport was, over the content.
 */
export async function screenshotWholePage(page: Page, file: string): Promise<void> {
  const size = page.viewportSize();
  const height = Number(await page.evaluate('document.documentElement.scrollHeight'));
  if (!size || height <= size.height) {
    await page.screenshot({ path: file, fullPage: true });
    return;
  }
  await page.setViewportSize({ width: size.width, height });
  try {
    await page.screenshot({ path: file });
  } finally {
    await page.setViewportSize(size);
  }
}
