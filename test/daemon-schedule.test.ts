// A real `coffer daemon` process runs plans on their schedules: short crons fire and reschedule, an
// overdue plan runs once after a simulated sleep (the test clock) and after a restart, five plans due
// at once run three at a time with the queue draining by priority, and a duplicate trigger (the
// schedule, `coffer run`, a `coffer backup` by hand) never makes a second run of a plan.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { jsonLines, ok, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';

function repoWithSource(t: import('node:test').TestContext): { repo: string; source: string } {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'notes.txt'), 'hello from the daemon test\n');
  ok(['init', '--repo', repo]);
  return { repo, source };
}

const HOUR = 3_600_000;

/** A before-hook that holds the run until the test creates `file`. */
function holdUntil(file: string): string {
  return `while [ ! -e ${file} ]; do sleep 0.1; done`;
}

test('a short cron fires and is rescheduled; a trigger while the plan runs is skipped, from the schedule, coffer run or coffer backup', async (t) => {
  const { repo, source } = repoWithSource(t);
  const release = path.join(tempDir(t), 'release');
  const daemon = await DaemonProcess.start(t, {
    config: `plans:\n  tick:\n    repos: [${repo}]\n    paths: [${source}]\n    schedule: "*/2 * * * * *"\n    hooks:\n      before: ${holdUntil(release)}\n`,
  });
  // The first run holds the plan until the test releases it: the slots in between find it running.
  const started = await daemon.waitFor(/job (\d+) \(plan tick\) started \(schedule\)/);
  const skipped = await daemon.waitFor(/plan tick already has job (\d+) running; this schedule trigger is skipped/);
  assert.equal(skipped[1], started[1]);
  const run = daemon.cli(['run', 'tick']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`plan tick is already queued or running as job ${started[1]}; not queued twice`));
  const byHand = daemon.cli(['backup', '--plan', 'tick']);
  assert.equal(byHand.code, 1);
  assert.match(byHand.stderr, new RegExp(`^coffer: plan tick is already running as job ${started[1]} \\(pid \\d+, heartbeat`));
  fs.writeFileSync(release, '');
  // Rescheduled after each run: a second run comes on its own.
  await daemon.waitFor(/job \d+ \(plan tick\) completed[^]*job \d+ \(plan tick\) completed/);
  const status = await daemon.status();
  assert.ok(status.schedules.some((s) => s.plan === 'tick' && s.nextRun > status.now - 2000));
  // Never two runs of the plan at once: every start follows the previous run's end.
  const events = daemon.log.split('\n').filter((l) => /\(plan tick\) (started|completed)/.test(l)).map((l) => (/started/.test(l) ? 1 : -1));
  let live = 0;
  for (const e of events) {
    live += e;
    assert.ok(live <= 1, `two runs of tick at once:\n${daemon.log}`);
  }
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0);
  const snapshots = daemon.cli(['snapshots', '--repo', repo, '--json']);
  assert.ok(jsonLines(snapshots.stdout).length >= 2);
});

test('five plans due at once: three run, the other two wait and the higher priority goes first', async (t) => {
  const { repo, source } = repoWithSource(t);
  const release = path.join(tempDir(t), 'release');
  const plan = (name: string, priority = 0) =>
    `  ${name}:\n    repos: [${repo}]\n    paths: [${source}]\n    schedule: "*/2 * * * * *"\n    queuePriority: ${priority}\n    hooks: { before: '${holdUntil(release)}' }\n`;
  const daemon = await DaemonProcess.start(t, { config: `plans:\n${plan('p1')}${plan('p2')}${plan('p3')}${plan('p4')}${plan('p5', 10)}` });
  // All five come due at the same slot; the runs hold their slots until released.
  const held = await daemon.until((s) => s.jobs.filter((j) => j.state === 'running').length === 3 && s.jobs.filter((j) => j.state === 'queued').length === 2);
  assert.deepEqual(held.jobs.filter((j) => j.state === 'queued').map((j) => j.plan), ['p5', 'p4'], 'the queue drains in priority order');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal((await daemon.status()).jobs.filter((j) => j.state === 'running').length, 3, 'the limit holds while slots come and go');
  fs.writeFileSync(release, '');
  await daemon.waitFor(/(\(plan p\d\) completed[^]*){5}/, 90_000);
  const lines = daemon.log.split('\n');
  let running = 0;
  let most = 0;
  for (const line of lines) {
    if (/\(plan p\d\) started/.test(line)) most = Math.max(most, ++running);
    if (/\(plan p\d\) (completed|failed|cancelled|interrupted)/.test(line)) running--;
  }
  assert.equal(most, 3, daemon.log);
  const starts = lines.flatMap((l) => /\(plan (p\d)\) started/.exec(l)?.[1] ?? []).slice(0, 5);
  assert.deepEqual(starts, ['p1', 'p2', 'p3', 'p5', 'p4'], daemon.log);
  await daemon.stop();
});

test('an overdue plan runs once after the machine slept through several slots, and once after the daemon was down', async (t) => {
  const { repo, source } = repoWithSource(t);
  const daemon = await DaemonProcess.start(t, {
    config: `plans:\n  hourly:\n    repos: [${repo}]\n    paths: [${source}]\n    schedule: { cron: "0 * * * *", timezone: UTC }\n`,
  });
  // A first run gives the plan its history.
  await daemon.run('hourly');
  await daemon.waitFor(/\(plan hourly\) completed/);
  const mark = daemon.log.length;
  daemon.jumpClock(5 * HOUR + 60_000);
  await daemon.waitFor(/the wall clock moved \d+ s ahead of the monotonic clock/, 30_000, mark);
  await daemon.waitFor(/plan hourly is due \(overdue: its run at \S+ was missed\)/, 30_000, mark);
  await daemon.waitFor(/\(plan hourly\) completed/, 60_000, mark);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(daemon.log.slice(mark).match(/plan hourly is due/g)?.length, 1, 'five missed slots, one run');
  await daemon.stop();

  // Down for three hours: the next start runs it once, then waits for the next slot.
  daemon.jumpClock(3 * HOUR);
  const restart = daemon.log.length;
  await daemon.launch();
  await daemon.waitFor(/plan hourly is due \(overdue/, 30_000, restart);
  await daemon.waitFor(/\(plan hourly\) completed/, 60_000, restart);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(daemon.log.slice(restart).match(/plan hourly is due/g)?.length, 1);
  const next = (await daemon.status()).schedules.find((s) => s.plan === 'hourly')!;
  assert.equal(new Date(next.nextRun).getUTCMinutes(), 0);
  await daemon.stop();
});
