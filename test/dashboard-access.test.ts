// The dashboard as people who do not use it at a desktop with a mouse meet it, in Debian's chromium
// (playwright-core) against a real `coffer server` and `coffer agent`: a folder of thousands of entries
// in a generated snapshot, browsed a page at a time and filtered; every control of every page named for
// a screen reader; the overview, a job and the snapshot browser at phone width; and signing in, opening
// a job, pausing and resuming it, browsing a snapshot and restoring a file with the keyboard alone. The
// fleet is set up through the API; the flows under test go through the pages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { until } from './helpers/agent.ts';
import { CHROMIUM, ensureWebBuilt, launchBrowser, screenshotWholePage, type Browser } from './helpers/browser.ts';
import { ok, REPO_ROOT } from './helpers/cli.ts';
import { FLEET_EMAIL, FLEET_PASSWORD, startDashboardFleet, type DashboardFleet } from './helpers/dashboard-fleet.ts';
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
let planId: string;
let src: string;

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
  // A plan whose backup lasts (a streamed source that takes its time), so that it can be paused by hand.
  src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'notes.txt'), 'notes\n');
  const other = (await fleet.api.call<{ id: string }>('POST', '/api/destinations', { name: 'other disk', kind: 'location', location: path.join(dir, 'other-repo') })).id;
  planId = (await fleet.api.call<{ id: string }>('POST', '/api/plans', { name: 'home', agentId: fleet.agentId, paths: [src], sources: [{ type: 'command', command: 'sleep 120; echo dumped', filename: 'slow-dump.txt' }], destinations: [other] })).id;
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
  await screenshotWholePage(page, path.join(SHOTS, '30-huge-folder-filtered.png'));

  await page.getByRole('searchbox', { name: 'Filter this folder by name' }).fill('no such name');
  await page.getByText('No name in this folder holds that text.').waitFor();
  await page.getByRole('searchbox', { name: 'Filter this folder by name' }).fill('');
  await entry(0).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Previous page' }).isDisabled(), true, 'a cleared filter starts again from the first page');
  await screenshotWholePage(page, path.join(SHOTS, '31-huge-folder.png'));
});

/** Controls a screen reader would announce with no name: each a line of the page's accessibility tree. */
async function unnamedControls(): Promise<string[]> {
  const tree = await page.locator('body').ariaSnapshot();
  return tree.split('\n').filter((line) => /^\s*- (button|link|textbox|searchbox|checkbox|radio|combobox|listbox|spinbutton|slider|switch|tab|menuitem|progressbar|dialog)(:|\s\[|$)/.test(line));
}

async function assertAllNamed(where: string): Promise<void> {
  // Let the data arrive: a page still loading has few controls.
  await page.locator('[role="status"]:has-text("Loading")').first().waitFor({ state: 'detached', timeout: 15_000 }).catch(() => {});
  assert.deepEqual(await unnamedControls(), [], `every control on ${where} has an accessible name`);
}

async function jobOfPlan(): Promise<string> {
  return (await fleet.api.call<{ id: string }>('POST', `/api/plans/${planId}/run`)).id;
}

test('every control of every page, and of its dialogs, has an accessible name', { skip }, async () => {
  const jobId = await jobOfPlan();
  const pages: [string, string, () => Promise<unknown>][] = [
    ['/', 'the overview', () => page.getByText('Last success per plan and destination').waitFor()],
    ['/tasks', 'the tasks', () => page.getByRole('link', { name: 'home' }).first().waitFor()],
    [`/jobs/${jobId}`, 'a job', () => page.getByRole('log', { name: 'Job log' }).waitFor()],
    ['/agents', 'the agents', () => page.getByRole('cell', { name: 'online' }).waitFor()],
    ['/plans', 'the plans', () => page.getByRole('link', { name: 'home', exact: true }).waitFor()],
    ['/plans/new', 'a new plan', () => page.getByLabel('Name', { exact: true }).waitFor()],
    [`/plans/${planId}`, 'a plan', () => page.getByRole('heading', { name: 'Plan home' }).waitFor()],
    [`/snapshots?destination=${destination}&agent=${fleet.agentId}&snapshot=${snapshot.id}&path=/home/ann/photos`, 'the snapshot browser', () => page.getByRole('button', { name: 'Next page' }).waitFor({ timeout: 30_000 })],
    ['/history', 'the history', () => page.getByRole('table', { name: 'Job history' }).waitFor()],
    ['/alerts', 'the alerts', () => page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor()],
    ['/reports', 'the reports', () => page.getByText('Jobs run').waitFor()],
    ['/settings', 'the settings', () => page.getByRole('table', { name: 'API keys' }).waitFor()],
  ];
  for (const [url, where, ready] of pages) {
    await go(url);
    await ready();
    await assertAllNamed(where);
  }
  await go('/agents');
  await page.getByRole('button', { name: 'Add agent' }).first().click();
  await page.getByRole('dialog').waitFor();
  await assertAllNamed('the enrolment dialog');
  await page.keyboard.press('Escape');
  await go('/plans');
  await page.getByRole('button', { name: 'New destination' }).first().click();
  await page.getByRole('dialog').waitFor();
  await assertAllNamed('the destination dialog');
  await page.keyboard.press('Escape');
  await fleet.api.call('POST', `/api/jobs/${jobId}/cancel`);
});

test('at phone width the overview, a job and the snapshot browser fit the screen, and the menu leads everywhere', { skip }, async () => {
  const jobId = await jobOfPlan();
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    const views: [string, string, () => Promise<unknown>][] = [
      ['/', 'overview', () => page.getByText('Last success per plan and destination').waitFor()],
      [`/jobs/${jobId}`, 'job', () => page.getByRole('log', { name: 'Job log' }).waitFor()],
      [`/snapshots?destination=${destination}&agent=${fleet.agentId}&snapshot=${snapshot.id}&path=/home/ann/photos`, 'snapshot-browser', () => page.getByRole('button', { name: 'Next page' }).waitFor({ timeout: 30_000 })],
    ];
    for (const [url, name, ready] of views) {
      await go(url);
      await ready();
      await page.waitForTimeout(300);
      const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
      await screenshotWholePage(page, path.join(SHOTS, `32-phone-${name}.png`));
      assert.ok(overflow <= 0, `the ${name} page is no wider than the phone's screen (${overflow}px too wide)`);
    }
    // The menu: every page is reachable, and the menu closes once one is chosen.
    await go('/');
    for (const [link, heading] of [['Snapshots', 'Snapshots'], ['Tasks', 'Tasks'], ['Plans', 'Plans'], ['Overview', 'Overview']] as const) {
      await page.getByRole('button', { name: 'Open menu' }).click();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }).click();
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      await page.getByRole('button', { name: 'Open menu' }).waitFor();
    }
    await go('/tasks');
    await page.getByRole('link', { name: 'home' }).first().click();
    await page.waitForURL(/\/jobs\//);
    await page.getByRole('log', { name: 'Job log' }).waitFor();
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 });
    await fleet.api.call('POST', `/api/jobs/${jobId}/cancel`).catch(() => {});
  }
});

/** Presses Tab until `target` has the focus (it may have it already), then checks that the focus shows. */
async function tabTo(target: Locator, max = 80): Promise<void> {
  await target.waitFor();
  for (let i = 0; ; i++) {
    if (await target.evaluate((el) => el === el.ownerDocument.activeElement)) break;
    if (i === max) throw new Error(`${String(target)} was not reached with ${max} presses of Tab`);
    await page.keyboard.press('Tab');
  }
  const shown = await page.evaluate(`(() => {
    const s = getComputedStyle(document.activeElement);
    return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  })()`);
  assert.ok(shown, `${String(target)} shows that it has the focus`);
}

test('with the keyboard alone: sign in, open a job, pause and resume it, browse a snapshot and restore a file', { skip }, async () => {
  const jobId = await jobOfPlan();
  try {
    await browser.context.clearCookies();
    await go('/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await assertAllNamed('the sign-in page');
    await tabTo(page.getByLabel('Email'));
    await page.keyboard.type(FLEET_EMAIL);
    await tabTo(page.getByLabel('Password'));
    await page.keyboard.type(FLEET_PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();

    const nav = page.getByRole('navigation', { name: 'Main' });
    await tabTo(nav.getByRole('link', { name: 'Tasks' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
    // This run's row (the runs cancelled by the tests before are listed too).
    await tabTo(page.locator(`a[href="/jobs/${jobId}"]`));
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/jobs/${jobId}$`));
    await tabTo(page.getByRole('button', { name: 'Pause home' }));
    await page.keyboard.press('Space');
    const resume = page.getByRole('button', { name: 'Resume home' });
    await resume.waitFor({ timeout: 90_000 });
    assert.match(await page.getByRole('heading', { level: 1 }).locator('..').innerText(), /Paused/);
    await tabTo(resume);
    await page.keyboard.press('Enter');
    // Running again (or already done: the packs stored before the pause are not sent twice).
    await until('the job to run again', async () => ['running', 'completed'].includes((await fleet.api.call<{ status: string }>('GET', `/api/jobs/${jobId}`)).status), 30_000);

    await tabTo(nav.getByRole('link', { name: 'Snapshots' }));
    await page.keyboard.press('Enter');
    await tabTo(page.getByRole('button', { name: `Browse snapshot ${snapshot.id.slice(0, 8)}`, exact: false }));
    await page.keyboard.press('Enter');
    const folder = (name: string) => page.getByRole('button', { name: new RegExp(`^${name}\\s*, folder$`) });
    for (const name of ['home', 'ann', 'docs']) {
      await tabTo(folder(name));
      await page.keyboard.press('Enter');
    }
    const file = page.getByRole('checkbox', { name: `Select ${wideFileName(1, 3)}` });
    await tabTo(file);
    await page.keyboard.press('Space');
    assert.equal(await file.isChecked(), true);
    await tabTo(page.getByRole('button', { name: 'Restore to agent…' }));
    await page.keyboard.press('Enter');
    const into = page.getByRole('dialog').getByLabel('Into folder');
    const target = path.join(dir, 'restored');
    await tabTo(into);
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type(target);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/jobs\//);
    await page.getByText('Completed').first().waitFor({ timeout: 60_000 });
    const restored = path.join(target, 'home/ann/docs', wideFileName(1, 3));
    await until('the restored file', () => fs.existsSync(restored));
    assert.equal(fs.readFileSync(restored, 'utf8'), `/home/ann/docs/${wideFileName(1, 3)}\n`);
  } catch (err) {
    await screenshotWholePage(page, path.join(SHOTS, 'failed-keyboard.png'));
    throw err;
  } finally {
    await fleet.api.call('POST', `/api/jobs/${jobId}/cancel`).catch(() => {});
  }
});
