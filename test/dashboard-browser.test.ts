// The dashboard in a real browser (Debian's chromium through playwright-core) against a real `coffer
// server` process, a real `coffer agent` process and s3rver: first account and sign-in, enrolling an
// agent, destinations and a plan made in the forms (with a refused field, and the repository passphrase
// given to the server and cleared), a backup to two destinations (one throttled) whose bars are watched
// to completion, pause and resume, browsing a snapshot, a diff, restoring a file and downloading a folder
// as a tar, acknowledging an alert, exporting a report, and what a person sees when the server is down or
// the session has ended.
// Screenshots of every page, with this data, go to test-results/dashboard/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { CHROMIUM, ensureWebBuilt, launchBrowser, screenshotWholePage, type Browser } from './helpers/browser.ts';
import { REPO_ROOT } from './helpers/cli.ts';
import { startSmtp, type SmtpServer } from './helpers/notify-servers.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`;
const SHOTS = path.join(REPO_ROOT, 'test-results/dashboard');
const EMAIL = 'alice@example.com';
const PASSWORD = 'correct horse battery';

let s3: S3Server;
let smtp: SmtpServer | undefined;
let server: ServerProcess;
let agent: AgentProcess | undefined;
let browser: Browser;
let page: Page;
let dir: string;
let src: string;
let dataDir: string;

async function shot(name: string, target: Page = page): Promise<void> {
  // Let data arrive and charts draw (the event stream keeps the network busy, so no waiting for it to idle).
  await target.locator('[role="status"]:has-text("Loading")').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
  await target.waitForTimeout(400);
  await screenshotWholePage(target, path.join(SHOTS, `${name}.png`));
}

/** A test of the flow; when it fails, a screenshot of where it stood and the agent's output help tell why. */
function step(name: string, fn: () => Promise<void>): void {
  test(name, { skip }, async () => {
    try {
      await fn();
    } catch (err) {
      await page.screenshot({ path: path.join(SHOTS, `failed-${name.slice(0, 40).replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
      if (agent) console.log(`# agent output:\n${agent.output().split('\n').slice(-20).map((l) => `#   ${l}`).join('\n')}`);
      throw err;
    }
  });
}

async function go(url: string, target: Page = page): Promise<void> {
  await target.goto(new URL(url, server.url).toString());
}

before(async () => {
  if (skip) return;
  ensureWebBuilt();
  fs.mkdirSync(SHOTS, { recursive: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-dashboard-'));
  src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'docs/deep'), { recursive: true });
  fs.mkdirSync(path.join(src, 'photos'), { recursive: true });
  fs.writeFileSync(path.join(src, 'docs/a.txt'), 'the original text\n');
  fs.writeFileSync(path.join(src, 'docs/deep/b.bin'), crypto.randomBytes(300_000));
  for (let i = 1; i <= 40; i++) fs.writeFileSync(path.join(src, 'docs', `note-${i}.md`), `# note ${i}\n`.repeat(i));
  // Random bytes do not compress: about 40 MiB to upload, in several 16 MiB packs (a destination's bar
  // moves as each object is stored there), some 30 seconds on the throttled destination.
  for (let i = 1; i <= 5; i++) fs.writeFileSync(path.join(src, 'photos', `img-${i}.jpg`), crypto.randomBytes(8 * 1024 * 1024));
  s3 = await startS3Server('dash');
  dataDir = path.join(dir, 'server');
  server = await startServerProcess({ dataDir });
  browser = await launchBrowser();
  page = await browser.context.newPage();
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await agent?.stop('SIGKILL');
  await server?.stop();
  await s3?.stop();
  await smtp?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

step('the first account, sign-out and sign-in, with a wrong password refused', async () => {
  await go('/');
  await page.waitForURL(/\/login/);
  await page.getByRole('heading', { name: 'Create the administrator account' }).waitFor();
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  const password = page.getByLabel('Password');
  assert.equal(await password.getAttribute('aria-invalid'), 'true', 'the problem is shown at the field');
  assert.match(await page.getByRole('alert').first().innerText(), /at least 10 characters/);
  await password.fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('wrong email or password').waitFor();
  await shot('01-sign-in-refused');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
});

step('enrolling an agent shows the install command with a fresh key, then the agent online', async () => {
  await go('/agents');
  await page.getByText('No agent yet').waitFor();
  await page.getByRole('button', { name: 'Add agent' }).first().click();
  await page.getByLabel('Name of the key').fill('laptop');
  await page.getByRole('button', { name: 'Create key and show command' }).click();
  const key = (await page.getByTestId('api-key').innerText()).trim();
  assert.match(key, /^cof_/);
  const command = await page.getByTestId('install-command').innerText();
  assert.ok(command.includes(`coffer agent install --server ${server.url} --key-file /etc/coffer/agent.key --key ${key}`), command);
  await page.getByText('Waiting for the agent to connect…').waitFor();
  await shot('02-agent-enroll');
  agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent') });
  await page.getByText(/connected\./).waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('cell', { name: 'online' }).waitFor();
  await shot('03-agents');
});

async function addDestination(name: string, location: string, uploadLimit?: string): Promise<void> {
  await page.getByRole('button', { name: 'New destination' }).first().click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Name', { exact: true }).fill(name);
  await dialog.getByLabel('Location').fill(location);
  await dialog.getByLabel('Access key id').fill(s3.credentials.accessKeyId);
  await dialog.getByLabel('Secret access key').fill(s3.credentials.secretAccessKey);
  if (uploadLimit) await dialog.getByLabel('Upload limit').fill(uploadLimit);
  await dialog.getByRole('button', { name: 'Save destination' }).click();
  await page.getByRole('cell', { name: new RegExp(`^${name}`) }).waitFor();
}

step('destinations and a plan are made in the forms; a bad field is named beside it; a test-write passes', async () => {
  await go('/plans');
  await addDestination('bucket', `s3:${s3.endpoint}/${s3.bucket}/fast`);
  await addDestination('offsite', `s3:${s3.endpoint}/${s3.bucket}/slow`, '1500K');
  // A bucket that does not exist: its test-write fails and raises an alert.
  await addDestination('broken', `s3:${s3.endpoint}/no-such-bucket/x`);
  await page.getByRole('button', { name: 'Test-write bucket' }).click();
  await page.getByText(/Wrote, read back and deleted a probe in \d+ ms/).waitFor();
  await page.getByRole('button', { name: 'Test-write broken' }).click();
  await page.getByRole('row', { name: /broken/ }).getByRole('status').filter({ hasText: /\S/ }).waitFor();

  await page.getByRole('link', { name: 'New plan' }).first().click();
  await page.getByLabel('Name', { exact: true }).fill('my home');
  await page.getByLabel('Agent').selectOption({ index: 1 });
  await page.getByLabel('Folders and files').fill(src);
  await page.getByRole('checkbox', { name: /^bucket/ }).check();
  await page.getByRole('checkbox', { name: /^offsite/ }).check();
  await page.getByLabel('Cron').fill('0 3 * * *');
  await page.getByLabel('Daily').fill('7');
  await page.getByRole('button', { name: 'Create plan' }).click();
  const name = page.getByLabel('Name', { exact: true });
  assert.equal(await name.getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate('document.activeElement.id'), await name.getAttribute('id'), 'focus moves to the field to fix');
  await page.getByText(/Next runs: /).waitFor();
  await shot('04-plan-form-refused');
  await name.fill('home');
  await page.getByRole('button', { name: 'Create plan' }).click();
  await page.getByRole('link', { name: 'home', exact: true }).waitFor();
  await shot('05-plans');
});

step("saving a plan in the form keeps the retention rules it does not show (set through the API)", async () => {
  type Plan = { id: string; name: string; retention?: Record<string, unknown> };
  const api = (method: string, url: string, body?: unknown): Promise<unknown> =>
    page.evaluate(
      async ([method, url, body]) => {
        const { csrfToken } = (await (await fetch('/api/auth/session')).json()) as { csrfToken: string };
        const res = await fetch(url as string, { method: method as string, headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
        return res.json();
      },
      [method, url, body] as const,
    );
  const home = ((await api('GET', '/api/plans')) as Plan[]).find((p) => p.name === 'home')!;
  await api('PUT', `/api/plans/${home.id}`, { retention: { keepDaily: 7, keepWithinDaily: '30d', keepTag: ['keep'] } });
  await go(`/plans/${home.id}`);
  await page.getByLabel('Daily').fill('8');
  await page.getByRole('button', { name: 'Save plan' }).click();
  await until('the plan to be saved', async () => ((await api('GET', `/api/plans/${home.id}`)) as Plan).retention?.keepDaily === 8);
  assert.deepEqual(((await api('GET', `/api/plans/${home.id}`)) as Plan).retention, { keepDaily: 8, keepWithinDaily: '30d', keepTag: ['keep'] });
  await go('/plans');
});

step("the plan's repository passphrase for the server: a password field, shown only as set, and cleared", async () => {
  const secret = 'tawny-heron-passphrase-41c9';
  const hasPassphrase = async (): Promise<boolean> =>
    page.evaluate(async () => {
      const plans = (await (await fetch('/api/plans')).json()) as { name: string; hasPassphrase: boolean }[];
      return plans.find((p) => p.name === 'home')!.hasPassphrase;
    });
  await page.getByRole('link', { name: 'home', exact: true }).click();
  await page.getByText(/^Not set\. With it the server applies the retention/).waitFor();
  const field = page.getByLabel('Repository passphrase for the server');
  assert.equal(await field.getAttribute('type'), 'password');
  await field.fill(secret);
  await page.getByRole('button', { name: 'Save plan' }).click();
  await until('the server to hold the passphrase', hasPassphrase);
  await page.getByRole('link', { name: 'home', exact: true }).click();
  await page.getByText(/^Set\. With it the server applies the retention/).waitFor();
  assert.equal(await page.getByLabel('Repository passphrase for the server').inputValue(), '', 'never filled from the server');
  assert.ok(!(await page.content()).includes(secret));
  await shot('21-plan-passphrase');
  await page.getByRole('checkbox', { name: 'Clear the passphrase the server holds' }).check();
  await page.getByRole('button', { name: 'Save plan' }).click();
  await until('the passphrase to be cleared', async () => !(await hasPassphrase()));
  await go('/plans');
});

step('a backup to two destinations: both bars move to completion, with a pause and a resume on the way', async () => {
  await page.getByRole('button', { name: 'Run home now' }).click();
  await page.waitForURL(/\/jobs\//);
  // Paused early, before a destination holds the snapshot (a resumed run starts again, reusing what is
  // stored): the run after the resume is the one watched.
  await page.getByRole('button', { name: 'Pause home' }).click({ timeout: 90_000 });
  await page.getByRole('button', { name: 'Resume home' }).waitFor({ timeout: 90_000 });
  assert.match(await page.getByRole('heading', { level: 1 }).locator('..').innerText(), /Paused/);
  await shot('09-job-paused');
  await page.getByRole('button', { name: 'Resume home' }).click();

  const fast = page.getByRole('progressbar', { name: 'Upload to bucket' });
  const slow = page.getByRole('progressbar', { name: 'Upload to offsite' });
  const seen = { fast: new Set<number>(), slow: new Set<number>() };
  const sample = async (): Promise<void> => {
    for (const [k, bar] of [['fast', fast], ['slow', slow]] as const) {
      const v = await bar.getAttribute('aria-valuenow', { timeout: 1000 }).catch(() => null);
      if (v !== null) seen[k].add(Number(v));
    }
  };
  await until('the slow destination to be on its way', async () => {
    await sample();
    return [...seen.slow].some((v) => v > 0 && v < 100);
  }, 90_000);
  // A second tab, as a person keeping an eye on everything: the tasks panel while it runs.
  const other = await browser.context.newPage();
  await go('/tasks', other);
  await other.getByRole('progressbar', { name: 'home progress' }).waitFor();
  await shot('06-tasks-running', other);
  await go('/', other);
  await shot('07-overview-running', other);
  await other.close();
  await shot('08-job-live');

  await until('the backup to complete', async () => {
    await sample();
    return page.getByRole('link', { name: 'Browse it' }).isVisible();
  }, 90_000);
  await sample();
  assert.equal(await fast.getAttribute('aria-valuenow'), '100');
  assert.equal(await slow.getAttribute('aria-valuenow'), '100');
  const moving = [...seen.slow].filter((v) => v > 0 && v < 100);
  assert.ok(moving.length >= 2, `the throttled bar moved through several values: ${[...seen.slow].join(', ')}`);
  await page.getByRole('log', { name: 'Job log' }).getByText(/snapshot [0-9a-f]{8}:/).waitFor();
  // The plan keeps 7 daily snapshots, but both destinations are write-only for the agent and the
  // server holds no passphrase: the job says so.
  await page.getByText(/^failed: not applied: bucket, offsite are write-only for agents/).waitFor();
  await page.getByRole('log', { name: 'Job log' }).getByText(/retention failed: not applied: .*; the snapshot is kept/).waitFor();
  await shot('10-job-completed');
});

step('a snapshot is browsed folder by folder, compared with another, a file restored and a folder downloaded', async () => {
  // A second snapshot with one file changed, for the diff.
  fs.writeFileSync(path.join(src, 'docs/a.txt'), 'changed after the first backup\n');
  await go('/plans');
  await page.getByRole('button', { name: 'Run home now' }).click();
  await page.waitForURL(/\/jobs\//);
  await page.getByRole('link', { name: 'Browse it' }).waitFor({ timeout: 60_000 });

  await go('/snapshots');
  await page.getByLabel('Destination').selectOption({ label: 'bucket' });
  const rows = page.getByRole('button', { name: /^Browse snapshot/ });
  await until('both snapshots listed', async () => (await rows.count()) === 2, 30_000);
  // The older one: the file as it was first.
  await rows.nth(1).click();
  const started = Date.now();
  // Each source is stored at its full path: down through the folders above it, one page each.
  const folder = (name: string) => page.getByRole('button', { name: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*, folder$`) });
  for (const part of [...src.split('/').filter(Boolean), 'docs']) await folder(part).click();
  await page.getByRole('checkbox', { name: 'Select a.txt' }).waitFor();
  const browseMs = Date.now() - started;
  await page.getByRole('button', { name: /^Compare with snapshot/ }).click();
  await page.getByText('1 modified').waitFor({ timeout: 30_000 });
  await shot('11-snapshot-browse-diff');

  // Restore one file onto the agent.
  await page.getByRole('checkbox', { name: 'Select a.txt' }).check();
  await page.getByRole('button', { name: 'Restore to agent…' }).click();
  const target = path.join(dir, 'restored');
  await page.getByLabel('Into folder').fill(target);
  await page.getByRole('dialog').getByRole('button', { name: 'Restore', exact: true }).click();
  await page.waitForURL(/\/jobs\//);
  await page.getByText('Completed').first().waitFor({ timeout: 60_000 });
  const restored = execFileSync('find', [target, '-name', 'a.txt'], { encoding: 'utf8' }).trim();
  assert.ok(restored, 'the file is on the agent');
  assert.equal(fs.readFileSync(restored, 'utf8'), 'the original text\n', 'as it was in that snapshot');
  await shot('12-restore-job');

  // Download a folder as a tar.
  await page.goBack();
  await page.getByRole('checkbox', { name: 'Select deep' }).check();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download as tar' }).click()]);
  assert.match(download.suggestedFilename(), /^coffer-[0-9a-f]{8}-deep\.tar$/);
  const tarFile = path.join(dir, 'deep.tar');
  await download.saveAs(tarFile);
  const out = path.join(dir, 'untarred');
  fs.mkdirSync(out);
  execFileSync('tar', ['-xf', tarFile, '-C', out]);
  assert.deepEqual(fs.readFileSync(path.join(out, 'deep/b.bin')), fs.readFileSync(path.join(src, 'docs/deep/b.bin')));
  assert.deepEqual(execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).trim().split('\n').map((n) => n.replace(/\/$/, '')), ['deep', 'deep/b.bin']);
  console.log(`# browsing down to docs took ${browseMs} ms`);
});

step('an alert is acknowledged; a report is exported as CSV and JSON', async () => {
  await go('/alerts');
  const ack = page.getByRole('button', { name: /^Acknowledge: destination broken failed its test-write/ });
  await ack.waitFor();
  await shot('13-alerts-open');
  await ack.click();
  await page.getByText(`acknowledged by ${EMAIL}`).waitFor();
  await shot('14-alerts-acknowledged');

  await go('/reports');
  await page.getByText('Jobs run').waitFor();
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  const csvText = fs.readFileSync((await csv.path())!, 'utf8');
  const lines = csvText.trim().split('\r\n');
  assert.equal(lines[0], 'id,kind,status,plan_id,agent_id,requested_at,started_at,finished_at,bytes_total,bytes_done,files_done,bytes_added,snapshot_id,error');
  assert.equal(lines.length, 4, 'two backups and a restore');
  const [json] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export JSON' }).click()]);
  const report = JSON.parse(fs.readFileSync((await json.path())!, 'utf8')) as { jobs: { total: number }; successRate: number };
  assert.equal(report.jobs.total, 3);
  assert.equal(report.successRate, 1);
  await shot('15-reports');
});

step('the other pages, at desktop and phone width', async () => {
  await go('/history');
  await page.getByLabel('Status').selectOption({ label: 'Completed' });
  await page.waitForURL(/status=completed/);
  await page.getByRole('table', { name: 'Job history' }).waitFor();
  await shot('16-history-filtered');
  await go('/settings');
  await page.getByRole('table', { name: 'API keys' }).waitFor();
  // The SMTP server, saved and tried: the test email reaches the administrator's own address.
  smtp = await startSmtp('mailer', 'smtp secret');
  await page.getByLabel('SMTP server').fill('127.0.0.1');
  await page.getByLabel('Port', { exact: true }).fill(String(smtp.port));
  await page.getByLabel('User', { exact: true }).fill('mailer');
  await page.getByRole('textbox', { name: 'Password', exact: true }).fill('smtp secret');
  await page.getByLabel('Sender', { exact: true }).fill('coffer@example.com');
  await page.getByRole('button', { name: 'Save server settings' }).click();
  await page.getByText('Server settings saved').waitFor();
  await page.getByRole('button', { name: 'Send a test email' }).click();
  await page.getByText(`Test email sent to ${EMAIL}`).waitFor();
  assert.deepEqual((await smtp.waitFor((m) => m.subject === 'coffer: test email')).to, [EMAIL]);
  await shot('17-settings');
  await go('/reports');
  await page.getByLabel('Email me the report').selectOption({ label: 'Every week' });
  await page.getByText('The report will be emailed to you').waitFor();
  await go('/');
  await page.getByText('Last success per plan and destination').waitFor();
  await shot('18-overview');
  await go('/tasks');
  await shot('19-tasks');
  const plans = page;
  await go('/plans');
  await plans.getByRole('link', { name: 'Edit home' }).click();
  await page.getByRole('heading', { name: 'Plan home' }).waitFor();
  await shot('20-plan-edit');

  await page.setViewportSize({ width: 390, height: 844 });
  await go('/');
  await page.getByRole('button', { name: 'Open menu' }).click();
  await shot('21-phone-menu');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tasks' }).click();
  await page.getByRole('heading', { name: 'Tasks' }).waitFor();
  await shot('22-phone-tasks');
  await go('/');
  await shot('23-phone-overview');
  const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
  assert.ok(overflow <= 0, `nothing wider than the phone's screen (${overflow}px too wide)`);
  await page.setViewportSize({ width: 1280, height: 900 });
});

step('the server going away and an ended session are shown with what to do', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await go('/agents');
  await page.getByRole('cell', { name: 'online' }).waitFor();
  await server.stop();
  await page.getByText('The connection to the server is lost').waitFor({ timeout: 15_000 });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'History' }).click();
  await page.getByLabel('Status').selectOption({ label: 'Failed' });
  await page.getByText('No connection to the server').first().waitFor({ timeout: 30_000 });
  await shot('24-server-down');
  server = await startServerProcess({ dataDir, listen: new URL(server.url).host });
  await page.getByText('Live updates on').waitFor({ timeout: 30_000 });

  // The session ends behind the page's back (expired, or signed out elsewhere), while reading a report.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reports' }).click();
  await page.getByText('Jobs run').waitFor();
  // The server may be writing (it has just restarted): wait for its lock rather than fail with SQLITE_BUSY.
  const db = new DatabaseSync(path.join(dataDir, 'server.db'), { timeout: 10_000 });
  db.exec('DELETE FROM sessions');
  db.close();
  // The next request finds the session gone (another period asked for, or the event stream reconnecting first).
  await page.getByRole('combobox', { name: 'Period' }).selectOption('month', { timeout: 5000 }).catch(() => {});
  await page.getByText('Your session has ended. Sign in again to continue where you were.').waitFor({ timeout: 15_000 });
  await shot('25-session-ended');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/reports$/);
});
