// The dashboard's snapshot browser on a snapshot of 100 000 files (`npm run bench -- --dashboard`): a
// real `coffer server` and `coffer agent`, Debian's chromium through playwright-core, and a generated
// snapshot (test/helpers/wide-snapshot.ts) with one directory of 20 000 entries and 80 of 1 000. Times
// what a person waits for (the snapshot list, the top of the snapshot, each directory opened, every
// further page of the huge one), the page's memory as it goes, and the agent's and server's memory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CDPSession, Page } from 'playwright-core';
import { launchBrowser, ensureWebBuilt } from '../test/helpers/browser.ts';
import { ok } from '../test/helpers/cli.ts';
import { startDashboardFleet } from '../test/helpers/dashboard-fleet.ts';
import { craftWideSnapshot, wideFileName } from '../test/helpers/wide-snapshot.ts';

/** The dashboard's page of a folder (web/src/api/snapshots.ts). */
const PAGE = 200;

const SOURCE = '/home/ann';
const HUGE = 20_000;
const PROJECTS = 80;
const PER_PROJECT = 1000;

interface Step {
  readonly what: string;
  readonly ms: number;
  /** From the click to the answer's arrival in the page (absent when it was already there). */
  readonly answerMs?: number | undefined;
  readonly rows: number;
  readonly heapMiB: number;
  readonly domNodes: number;
}

async function metrics(cdp: CDPSession): Promise<{ heapMiB: number; domNodes: number }> {
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics: all } = await cdp.send('Performance.getMetrics');
  const get = (name: string) => all.find((m) => m.name === name)?.value ?? 0;
  return { heapMiB: get('JSHeapUsedSize') / 2 ** 20, domNodes: get('Nodes') };
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export async function runDashboardBench(output: string): Promise<void> {
  ensureWebBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-dashboard-bench-'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const started = Date.now();
  const snapshot = await craftWideSnapshot(repo, SOURCE, [{ path: 'photos', files: HUGE }, ...Array.from({ length: PROJECTS }, (_, i) => ({ path: `projects/p${String(i).padStart(3, '0')}`, files: PER_PROJECT }))]);
  console.log(`# generated a snapshot of ${snapshot.totalFiles} files in ${Date.now() - started} ms`);
  const fleet = await startDashboardFleet(dir);
  const browser = await launchBrowser();
  const steps: Step[] = [];
  try {
    const destination = (await fleet.api.call<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: repo })).id;
    await fleet.signIn(browser.context);
    const page: Page = await browser.context.newPage();
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('Performance.enable');
    // When the last answer about the snapshot arrived: the rest of a step is the page drawing it.
    let answered = 0;
    page.on('requestfinished', (r) => {
      if (/\/api\/snapshots(\?|\/[^/]+\/tree)/.test(r.url())) answered = performance.now();
    });
    const rows = () => page.locator('table[aria-label^="Contents of"] tbody tr').count();
    const measure = async (what: string, act: () => Promise<unknown>, ready: () => Promise<unknown>): Promise<void> => {
      const t0 = performance.now();
      await act();
      await ready();
      const ms = performance.now() - t0;
      steps.push({ what, ms, answerMs: answered > t0 ? answered - t0 : undefined, rows: await rows(), ...(await metrics(cdp)) });
      console.log(`# ${what}: ${ms.toFixed(0)} ms`);
    };
    // CSS rather than role locators: these find their element at once, so the times are the page's own.
    const folder = (name: string) => page.locator('table[aria-label^="Contents of"] button', { hasText: new RegExp(`^${escape(name)}, folder$`) });
    const checkbox = (name: string) => page.locator(`input[type="checkbox"][aria-label="Select ${name}"]`);

    await measure(
      'the snapshot list (the agent opens the repository: keys, index of 100k blobs)',
      () => page.goto(`${fleet.server.url}/snapshots?destination=${destination}&agent=${fleet.agentId}`),
      () => page.locator('button[aria-label^="Browse snapshot"]').waitFor({ timeout: 120_000 }),
    );
    await measure('open the snapshot (its top)', () => page.locator('button[aria-label^="Browse snapshot"]').click(), () => folder('home').waitFor({ timeout: 60_000 }));
    await measure('/home', () => folder('home').click(), () => folder('ann').waitFor({ timeout: 60_000 }));
    await measure('/home/ann', () => folder('ann').click(), () => folder('projects').waitFor({ timeout: 60_000 }));
    await measure(`/home/ann/projects (${PROJECTS} folders)`, () => folder('projects').click(), () => folder('p079').waitFor({ timeout: 60_000 }));
    await measure(`/home/ann/projects/p042 (${PER_PROJECT} files)`, () => folder('p042').click(), () => checkbox(wideFileName(0, PER_PROJECT)).waitFor({ timeout: 60_000 }));
    await measure('back up to /home/ann (already read)', () => page.locator('nav[aria-label="Folder path"] button', { hasText: /^ann$/ }).click(), () => folder('photos').waitFor({ timeout: 60_000 }));
    const next = page.locator('button', { hasText: /^Next page$/ });
    const shows = (i: number) => checkbox(wideFileName(i, HUGE)).waitFor({ timeout: 60_000 });
    await measure(`/home/ann/photos (${HUGE.toLocaleString('en-US')} files): first page`, () => folder('photos').click(), () => shows(0));
    const pageTimes: number[] = [];
    for (let p = 2; p <= 11; p++) {
      if (p < 11) {
        const t0 = performance.now();
        await next.click();
        await shows((p - 1) * PAGE);
        pageTimes.push(performance.now() - t0);
      } else await measure('/home/ann/photos: page 11 (Next page)', () => next.click(), () => shows((p - 1) * PAGE));
    }
    const wanted = wideFileName(15_342, HUGE);
    await measure(`/home/ann/photos: filter by “${wanted.slice(5, 10)}” (from typing to the rows; 250 ms of it waiting for typing to pause)`, () => page.locator('input[type="search"]').fill(wanted.slice(5, 10)), () => shows(15_342));
    const t0 = performance.now();
    await checkbox(wanted).check();
    await page.getByText('1 selected').waitFor();
    steps.push({ what: 'select the file found', ms: performance.now() - t0, answerMs: undefined, rows: await rows(), ...(await metrics(cdp)) });

    // The API alone, five times each (the agent keeps the repository open; a directory is read from its tree cache after the first time).
    const api = async (p: string, extra = ''): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await fleet.api.call('GET', `/api/snapshots/${snapshot.id}/tree?destination=${destination}&agent=${fleet.agentId}&path=${encodeURIComponent(p)}${extra}`);
        times.push(performance.now() - t);
      }
      return times.sort((a, b) => a - b);
    };
    const apiRows = [
      ['/home/ann/projects/p007 (1,000 entries)', await api(`${SOURCE}/projects/p007`)],
      ['/home/ann/photos, first page of 1,000', await api(`${SOURCE}/photos`)],
      ['/home/ann/photos, the page after file 15,000', await api(`${SOURCE}/photos`, `&after=${wideFileName(15_000, HUGE)}`)],
    ] as const;
    const agentRss = rssMiB(fleet.agent.child.pid!);
    const serverRss = rssMiB(fleet.server.child.pid!);
    const median = (xs: readonly number[]) => xs[Math.floor(xs.length / 2)]!;
    const md = [
      '# Dashboard: browsing a snapshot of 100 000 files',
      '',
      `\`npm run bench -- --dashboard\` (${new Date().toISOString().slice(0, 16)} UTC, ${os.cpus().length} cores, load average at start ${os.loadavg()[0]!.toFixed(1)}).`,
      `A generated snapshot of ${snapshot.totalFiles.toLocaleString('en-US')} files (each its own data blob, so the index holds one entry per file): ${SOURCE}/photos with`,
      `${HUGE.toLocaleString('en-US')} files, ${PROJECTS} folders of ${PER_PROJECT.toLocaleString('en-US')} in ${SOURCE}/projects. A real \`coffer server\` and \`coffer agent\` on this machine, the`,
      'repository in a local folder the agent opens, Debian chromium (headless) through playwright-core. Times are from',
      'the click to the rows on screen; memory is the page\'s JavaScript heap after a garbage collection, and its DOM nodes.',
      '',
      '| step | ms | of which the answer | rows shown | page JS heap MiB | DOM nodes |',
      '|---|---|---|---|---|---|',
      ...steps.map((s) => `| ${s.what} | ${s.ms.toFixed(0)} | ${s.answerMs === undefined ? 'cached' : s.answerMs.toFixed(0)} | ${s.rows.toLocaleString('en-US')} | ${s.heapMiB.toFixed(1)} | ${s.domNodes.toLocaleString('en-US')} |`),
      '',
      `Pages 2 to 10 of ${SOURCE}/photos (Next page): median ${median([...pageTimes].sort((a, b) => a - b)).toFixed(0)} ms, slowest ${Math.max(...pageTimes).toFixed(0)} ms.`,
      '',
      'The tree API alone (GET /api/snapshots/:id/tree, five times each, through the server to the agent and back):',
      '',
      '| directory | median ms | range ms |',
      '|---|---|---|',
      ...apiRows.map(([what, t]) => `| ${what} | ${median(t).toFixed(0)} | ${t[0]!.toFixed(0)}–${t[t.length - 1]!.toFixed(0)} |`),
      '',
      `Memory at the end: agent ${agentRss.toFixed(0)} MiB RSS, server ${serverRss.toFixed(0)} MiB RSS.`,
      '',
    ].join('\n');
    fs.writeFileSync(output, md);
    console.log(md);
  } finally {
    await browser.close();
    await fleet.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
