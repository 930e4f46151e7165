import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { test } from 'node:test';
import { JobLostError, PlanBusyError } from '../src/jobs/job-errors.ts';
import { JobStore } from '../src/jobs/job-store.ts';
import { processAlive, staleReason } from '../src/jobs/liveness.ts';
import { jobFixture, photosPlan, tempDir } from './helpers/jobs.ts';

const MINUTE = 60_000;

test('staleReason: a gone pid on this host, or a heartbeat older than the limit', () => {
  const check = { now: 1_000_000, host: 'here', staleAfterMs: 300_000, isAlive: (pid: number) => pid === 1 };
  const job = { pid: 1, host: 'here', lastHeartbeat: 1_000_000 - 300_000, startedAt: 0 };
  assert.equal(staleReason(job, check), undefined);
  assert.equal(staleReason({ ...job, pid: 2 }, check), 'process 2 is gone');
  // Another host's pid means nothing here: only the heartbeat counts.
  assert.equal(staleReason({ ...job, pid: 2, host: 'nas' }, check), undefined);
  assert.equal(staleReason({ ...job, lastHeartbeat: 1_000_000 - 300_001 }, check), 'no heartbeat for 300 s (limit 300 s)');
  assert.equal(staleReason({ ...job, lastHeartbeat: null, startedAt: null }, check), 'it never sent a heartbeat');
});

test('processAlive knows this process and refuses pids that address groups', () => {
  assert.equal(processAlive(process.pid), true);
  assert.equal(processAlive(0), false);
  assert.equal(processAlive(-1), false);
});

test('heartbeats keep a run alive and record progress; silence past the limit interrupts it', (t) => {
  const f = jobFixture(t);
  const planId = photosPlan(f.store);
  const run = f.store.acquirePlanRun(planId);
  run.heartbeat({ stage: 'uploading', bytesTotal: 1000, bytesDone: 10, filesTotal: 5, filesDone: 1, speed: 100 });
  f.clock.advance(4 * MINUTE);
  run.heartbeat({ bytesDone: 500 });
  assert.deepEqual(
    (({ stage, bytesTotal, bytesDone, filesTotal, filesDone, speed, lastHeartbeat }) => ({ stage, bytesTotal, bytesDone, filesTotal, filesDone, speed, lastHeartbeat }))(run.job),
    { stage: 'uploading', bytesTotal: 1000, bytesDone: 500, filesTotal: 5, filesDone: 1, speed: 100, lastHeartbeat: f.clock.time },
  );

  const other = f.open({ pid: 2000 });
  f.clock.advance(4 * MINUTE);
  assert.deepEqual(other.detectStaleJobs(), []);
  assert.throws(() => other.acquirePlanRun(planId), {
    name: 'PlanBusyError',
    message:
      'plan photos is already running as job 1 (pid 1000, heartbeat 240s ago); its process is alive on this host: ' +
      'wait for it or stop process 1000 first (--force only takes over a run whose process is gone)',
  });

  f.clock.advance(MINUTE + 1000);
  const [stale] = other.detectStaleJobs();
  assert.equal(stale?.status, 'interrupted');
  assert.equal(stale.error, 'stale: no heartbeat for 301 s (limit 300 s)');
  assert.equal(other.events(run.jobId).at(-1)!.message, 'stale: no heartbeat for 301 s (limit 300 s)');
  // The old owner, should it wake up, is told to stop.
  assert.throws(() => run.heartbeat(), { name: 'JobLostError', message: 'job 1 is no longer run by this process: it is interrupted' });

  // The next run of the plan resumes the same job, as its second run.
  const resumed = other.acquirePlanRun(planId);
  assert.deepEqual([resumed.jobId, resumed.run, resumed.job.status, resumed.job.pid, resumed.job.error], [1, 2, 'running', 2000, null]);
  assert.throws(() => run.heartbeat(), { message: 'job 1 was taken over by pid 2000 on here' });
});

test("a run's own staleAfter (its plan's) is what every other process judges it by", (t) => {
  const f = jobFixture(t);
  const planId = photosPlan(f.store);
  const patient = f.store.acquirePlanRun(planId, { staleAfterMs: 30 * MINUTE });
  assert.equal(patient.job.staleAfterMs, 30 * MINUTE);
  const other = f.open({ pid: 2000 });
  f.clock.advance(20 * MINUTE);
  assert.deepEqual(other.detectStaleJobs(), [], 'silent longer than the default 5 min, but within its own 30');
  f.clock.advance(10 * MINUTE + 1000);
  assert.equal(other.detectStaleJobs()[0]?.error, 'stale: no heartbeat for 1801 s (limit 1800 s)');
  // The next run without a limit of its own is judged by the default again.
  const next = other.acquirePlanRun(planId);
  assert.equal(next.job.staleAfterMs, null);
});

test('a run on another host blocks the plan; --force takes it over, and its owner is told', (t) => {
  const f = jobFixture(t);
  const planId = photosPlan(f.store);
  const remote = f.open({ host: 'nas', pid: 77 }).acquirePlanRun(planId);
  f.clock.advance(12_000);
  assert.throws(() => f.store.acquirePlanRun(planId), {
    message: 'plan photos is already running as job 1 (pid 77 on host nas, heartbeat 12s ago); use --force to take over a stale run',
  });
  const taken = f.store.acquirePlanRun(planId, { force: true });
  assert.equal(taken.jobId, remote.jobId);
  assert.ok(f.store.events(taken.jobId).some((e) => e.message === 'taken over with --force by pid 1000 on here'));
  assert.throws(() => remote.heartbeat(), JobLostError);
});

test('a killed process is detected by its pid at once, and its plan can run again', async (t) => {
  const sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.after(() => sleeper.kill('SIGKILL'));
  const f = jobFixture(t, { isAlive: processAlive });
  const planId = photosPlan(f.store);
  const run = f.open({ pid: sleeper.pid! }).acquirePlanRun(planId);

  assert.deepEqual(f.store.detectStaleJobs(), []);
  assert.throws(
    () => f.store.acquirePlanRun(planId, { force: true }),
    (err) => err instanceof PlanBusyError && err.job.pid === sleeper.pid && /its process is alive on this host/.test(err.message),
  );

  sleeper.kill('SIGKILL');
  await once(sleeper, 'exit');
  const [interrupted] = f.store.detectStaleJobs();
  assert.equal(interrupted?.id, run.jobId);
  assert.equal(interrupted.error, `stale: process ${sleeper.pid} is gone`);
  assert.deepEqual(
    f.store.runs(run.jobId).map((r) => [r.run, r.pid, r.outcome, r.error]),
    [[1, sleeper.pid, 'interrupted', `stale: process ${sleeper.pid} is gone`]],
  );
  assert.equal(f.store.acquirePlanRun(planId).jobId, run.jobId);
});

test('acquiring takes over a dead run by itself, without --force', async (t) => {
  const sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const f = jobFixture(t, { isAlive: processAlive });
  const planId = photosPlan(f.store);
  const dead = f.open({ pid: sleeper.pid! }).acquirePlanRun(planId);
  sleeper.kill('SIGKILL');
  await once(sleeper, 'exit');
  const run = f.store.acquirePlanRun(planId);
  assert.equal(run.jobId, dead.jobId);
  assert.deepEqual(
    f.store.events(run.jobId).map((e) => e.kind),
    ['created', 'started', 'interrupted', 'resumed'],
  );
});

test('the database itself refuses a second live run of a plan', (t) => {
  const f = jobFixture(t);
  const planId = photosPlan(f.store);
  f.store.acquirePlanRun(planId);
  assert.throws(
    () => f.store.sql.run("INSERT INTO jobs (plan_id, status, created_at) VALUES (?, 'paused', 0)", planId),
    /UNIQUE constraint failed: jobs\.plan_id/,
  );
});

const CHILD = new URL('./helpers/jobs-acquire-child.ts', import.meta.url).pathname;

interface Outcome {
  readonly won: boolean;
  readonly jobId?: number;
  readonly name?: string;
  readonly message?: string;
}

async function race(dir: string, planId: number): Promise<{ outcomes: Outcome[]; pids: number[] }> {
  const children: ChildProcess[] = [0, 1].map(() =>
    spawn(process.execPath, [CHILD, dir, String(planId)], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  try {
    const lines = children.map((c) => readline.createInterface({ input: c.stdout! })[Symbol.asyncIterator]());
    for (const line of lines) assert.equal((await line.next()).value, 'ready');
    for (const child of children) child.stdin!.write('go\n');
    const outcomes = await Promise.all(lines.map(async (line) => JSON.parse((await line.next()).value as string) as Outcome));
    return { outcomes, pids: children.map((c) => c.pid!) };
  } finally {
    for (const child of children) child.stdin!.end();
    await Promise.all(children.map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
  }
}

test('two processes racing for one plan: exactly one wins', async (t) => {
  // A few independent races at once, to give the losing interleavings a chance to happen.
  await Promise.all(
    [1, 2, 3].map(async () => {
      const dir = tempDir(t);
      const setup = JobStore.open(dir);
      const planId = photosPlan(setup);
      setup.close();
      const { outcomes, pids } = await race(dir, planId);
      const winners = outcomes.filter((o) => o.won);
      assert.equal(winners.length, 1, JSON.stringify(outcomes));
      const winnerPid = pids[outcomes.indexOf(winners[0]!)];
      const loser = outcomes.find((o) => !o.won)!;
      assert.equal(loser.name, 'PlanBusyError');
      assert.match(loser.message!, new RegExp(`^plan photos is already running as job 1 \\(pid ${winnerPid}, heartbeat \\d+s ago\\)`));
      const check = JobStore.open(dir);
      assert.deepEqual(check.selectJobs('ORDER BY j.id').map((j) => [j.id, j.status, j.pid]), [[1, 'running', winnerPid]]);
      check.close();
    }),
  );
});
