// The dashboard as people who do not use it at a desktop with a mouse meet it, in Debian's chromium
// (playwright-core) against a real `coffer server` and `coffer agent`: a folder of thousands of entries
// in a generated snapshot, browsed a page at a time and filtered. The fleet is set up through the API;
// the flows under test go through the pages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { CHROMIUM, ensureWebBuilt, launchBrowser, type Browser } from './helpers/browser.ts';
import { ok, REPO_ROOT } from './helpers/cli.ts';
import { startDashboardFleet, type DashboardFleet } from './helpers/dashboard-fleet.ts';
import { craftWideSnapshot, wideFileName, type WideSnapshot } from './helpers/wide-snapshot.ts';

const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`;
const SHOTS = path.join(REPO_ROOT, 'test-results/dashboard');
/** Entries in the huge folder: many pages of the browser's 200. */
const HUGE = 2500;

let dir: string;
let fleet: DashboardFleet;
let browser: Browser;
let page: Page;
let destination: string;
let snapshot: WideSnapshot;

before(async () => {
  if (skip) return;
  ensureWebBuilt();
  fs.mkdirSync(SHOTS, { recursive: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-dashboard-access-'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  snapshot = await craftWideSnapshot(repo, '/home/ann', [{ path: 'photos', files: HUGE }, { path: 'docs', files: 3 }]);
  fleet = await startDashboardFleet(dir);
  destination = (await fleet.api.call<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: repo })).id;
  browser = await launchBrowser();
  await fleet.signIn(browser.context);
  page = await browser.context.newPage();
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await fleet?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function go(url: string): Promise<void> {
  await page.goto(new URL(url, fleet.server.url).toString());
}

test(`a folder of ${HUGE} entries is browsed a page at a time, and filtered by name`, { skip }, async () => {
  await go(`/snapshots?destination=${destination}&agent=${fleet.agentId}&snapshot=${snapshot.id}&path=/home/ann/photos`);
  const entry = (i: number) => page.getByRole('checkbox', { name: `Select ${wideFileName(i, HUGE)}`, exact: true });
  await entry(0).waitFor({ timeout: 30_000 });
  await page.getByText(`Entries 1–200 of ${HUGE.toLocaleString('en-US')}`).waitFor();
  assert.equal(await entry(200).count(), 0, 'one page at a time');

  await page.getByRole('button', { name: 'Next page' }).click();
  await entry(200).waitFor();
  await page.getByText(`Entries 201–400 of ${HUGE.toLocaleString('en-US')}`).waitFor();
  assert.equal(await entry(0).count(), 0);
  await page.getByRole('button', { name: 'Next page' }).click();
  await entry(400).waitFor();
  await page.getByRole('button', { name: 'Previous page' }).click();
  await entry(200).waitFor();
  await page.getByText(`Entries 201–400 of ${HUGE.toLocaleString('en-US')}`).waitFor();

  // A filter searches the whole folder, not the page shown.
  const wanted = wideFileName(2345, HUGE);
  await page.getByRole('searchbox', { name: 'Filter this folder by name' }).fill('2345');
  await entry(2345).waitFor();
  await page.getByText(`1 of ${HUGE.toLocaleString('en-US')} entries match`, { exact: true }).waitFor();
  assert.equal(await page.getByRole('checkbox', { name: /^Select / }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Next page' }).count(), 0, 'one page: no pager');
  await page.getByRole('checkbox', { name: `Select ${wanted}` }).check();
  await page.getByText('1 selected').waitFor();
  await page.screenshot({ path: path.join(SHOTS, '30-huge-folder-filtered.png'), fullPage: true });

  await page.getByRole('searchbox', { name: 'Filter this folder by name' }).fill('no such name');
  await page.getByText('No name in this folder holds that text.').waitFor();
  await page.getByRole('searchbox', { name: 'Filter this folder by name' }).fill('');
  await entry(0).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Previous page' }).isDisabled(), true, 'a cleared filter starts again from the first page');
  await page.screenshot({ path: path.join(SHOTS, '31-huge-folder.png'), fullPage: true });
});
