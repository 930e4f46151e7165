// The job view of a scaled-out fleet run in a real browser (Debian's chromium through playwright-core)
// against a real `coffer server` and three real `coffer agent` processes with label nas: while the run
// goes, each worker shows with its shard and progress and the waiting shards with their sizes, live from
// the event stream; at the end every shard is done and the job completed. The fleet is set up through
// the API; the page is only watched. A screenshot goes to test-results/dashboard/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { CHROMIUM, ensureWebBuilt, launchBrowser, screenshotWholePage, type Browser } from './helpers/browser.ts';
import { REPO_ROOT } from './helpers/cli.ts';
import { HttpClient } from './helpers/dashboard-fleet.ts';
import { makeShardedTree, MiB } from './helpers/scale-out.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { seededBytes } from './helpers/tree.ts';

const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`;
const SHOTS = path.join(REPO_ROOT, 'test-results/dashboard');

let dir: string;
let server: ServerProcess;
let api: HttpClient;
const agents: AgentProcess[] = [];
let browser: Browser;
let page: Page;

before(async () => {
  if (skip) return;
  ensureWebBuilt();
  fs.mkdirSync(SHOTS, { recursive: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-dashboard-scale-'));
  server = await startServerProcess({ dataDir: path.join(dir, 'server') });
  api = new HttpClient(server.url);
  api.csrf = (await api.call<{ csrfToken: string }>('POST', '/api/auth/signup', { email: 'ann@example.com', password: 'correct horse battery' })).csrfToken;
  const { key } = await api.call<{ key: string }>('POST', '/api/keys', { name: 'nas' });
  for (const name of ['a', 'b', 'c']) agents.push(startAgent({ server: server.url, key, dir: path.join(dir, `agent-${name}`), capacity: 1, labels: ['nas'] }));
  await until('three agents online', async () => (await api.call<{ status: string }[]>('GET', '/api/agents')).filter((a) => a.status === 'online').length === 3, 60_000);
  browser = await launchBrowser();
  const at = api.cookie.indexOf('=');
  await browser.context.addCookies([{ name: api.cookie.slice(0, at), value: api.cookie.slice(at + 1), url: server.url }]);
  page = await browser.context.newPage();
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await Promise.all(agents.map((a) => a.stop('SIGKILL')));
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the job view of a scaled-out run shows each worker with its shard and progress, and the waiting shards with their sizes, live', { skip }, async () => {
  const source = path.join(dir, 'source');
  makeShardedTree(source);
  for (let top = 0; top < 6; top++) {
    const many = path.join(source, `top-${top}`, 'many');
    fs.mkdirSync(many);
    for (let f = 0; f < 700; f++) fs.writeFileSync(path.join(many, `m${f}`), `${top}:${f}\n`);
    fs.writeFileSync(path.join(many, 'big.bin'), seededBytes(`dashboard ${top}`, 3 * MiB));
  }
  const list = await api.call<{ id: string }[]>('GET', '/api/agents');
  // Slow uploads keep the run going while the page is watched.
  for (const a of list) await api.call('PATCH', `/api/agents/${a.id}`, { uploadLimit: 2 * MiB });
  await api.call('POST', '/api/destinations', { name: 'share-repo', kind: 'location', location: path.join(dir, 'repo') });

  // The agents' labels (from --label) on the Agents page, and one more given in its dialog.
  await page.goto(new URL('/agents', server.url).toString());
  const labelled = page.getByRole('list', { name: /^Labels of / });
  await until('three agents labelled nas', async () => (await labelled.filter({ hasText: 'nas' }).count()) === 3, 30_000);
  await page.getByRole('button', { name: /^Limits and labels of / }).first().click();
  await page.getByRole('textbox', { name: 'Labels' }).fill('nas, fast');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await until('an agent labelled fast too', async () => (await api.call<{ labels: string[] }[]>('GET', '/api/agents')).some((a) => a.labels.join() === 'fast,nas'));

  // The plan made in the form: every agent with label nas backs it up.
  await page.goto(new URL('/plans/new', server.url).toString());
  await page.getByLabel('Name', { exact: true }).fill('share');
  await page.getByLabel('Agent', { exact: true }).selectOption({ index: 1 });
  await page.getByLabel('Folders and files').fill(source);
  await page.getByRole('checkbox', { name: /^share-repo/ }).check();
  await page.getByLabel('Who backs it up').selectOption({ label: 'Every agent with a label' });
  await page.getByLabel('Label', { exact: true }).fill('../nas');
  await page.getByRole('button', { name: 'Create plan' }).click();
  assert.equal(await page.getByLabel('Label', { exact: true }).getAttribute('aria-invalid'), 'true', 'a bad label is refused in the form');
  await page.getByLabel('Label', { exact: true }).fill('nas');
  await page.getByRole('button', { name: 'Create plan' }).click();
  await page.getByRole('link', { name: 'share', exact: true }).waitFor();
  const [plan] = await api.call<{ id: string; workerLabel?: string }[]>('GET', '/api/plans');
  assert.equal(plan!.workerLabel, 'nas');
  await page.getByRole('button', { name: 'Run share now' }).click();
  await page.waitForURL(/\/jobs\//);
  const job = { id: /\/jobs\/([\w-]+)/.exec(page.url())![1]! };

  try {
    await watch(job.id);
  } catch (err) {
    await page.screenshot({ path: path.join(SHOTS, 'failed-job-scaled-out.png'), fullPage: true }).catch(() => {});
    const log = await api.call<{ lines: { message: string }[] }>('GET', `/api/jobs/${job.id}/log`);
    console.log(`# job log:\n${log.lines.map((l) => `#   ${l.message}`).join('\n')}\n# agents:\n${agents.map((a) => a.output()).join('\n')}`);
    throw err;
  }
});

async function watch(jobId: string): Promise<void> {
  await page.getByRole('region', { name: 'Workers and shards' }).waitFor({ timeout: 30_000 });
  const workers = page.getByRole('list', { name: 'Workers' });
  const waiting = page.getByRole('list', { name: 'Shards waiting' });
  // Live: workers appear with their shards as the agents claim them, with a bar each, and shards wait with their sizes.
  const worker = workers.getByRole('listitem').filter({ hasText: /shard \d+/ });
  await worker.first().waitFor({ timeout: 90_000 });
  await until('shards waiting with their sizes', async () => /\d+(\.\d+)? (MB|MiB|kB|KiB|GB|GiB) · [\d,]+ files/.test((await waiting.innerText()) ?? ''), 30_000);
  assert.ok((await worker.first().getByRole('progressbar').count()) === 1, 'a bar per worker');
  const label = await worker.first().getAttribute('aria-label');
  assert.match(label ?? '', /^Worker \S+ [0-9a-f]{8}, shard \d+$/);
  // Several agents work at once.
  await until('two workers at once', async () => new Set((await worker.evaluateAll((items) => items.map((i) => i.getAttribute('aria-label')?.split(',')[0])))).size >= 2, 60_000);
  await screenshotWholePage(page, path.join(SHOTS, 'job-scaled-out.png'));
  const description = page.locator('#shards-title').locator('..');
  assert.match(await description.innerText(), /of \d+ shards done · split for the agents with label nas/);

  await page.getByText('completed', { exact: true }).first().waitFor({ timeout: 240_000 });
  await until('every shard done', async () => /(\d+) of \1 shards done/.test(await description.innerText()), 30_000);
  const done = await api.call<{ status: string; snapshotId: string }>('GET', `/api/jobs/${jobId}`);
  assert.equal(done.status, 'completed');
  assert.ok(done.snapshotId);
}
