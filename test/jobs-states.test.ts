import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { JobLostError } from '../src/jobs/job-errors.ts';
import { DEFAULT_RETRY_POLICY } from '../src/jobs/retry.ts';
import type { JobRun } from '../src/jobs/run.ts';
import { IllegalTransitionError, JOB_STATUSES, TRANSITIONS, assertTransition, canTransition, type JobStatus } from '../src/jobs/states.ts';
import { jobFixture, photosPlan, type Fixture } from './helpers/jobs.ts';

interface Subject {
  readonly f: Fixture;
  readonly planId: number;
  readonly jobId: number;
  readonly run?: JobRun;
}

/** A job of a fresh store brought to `status` the way the product gets it there. */
function subjectIn(t: TestContext, status: JobStatus): Subject {
  // No retries, so a failure stays failed.
  const f = jobFixture(t, { retryPolicy: { ...DEFAULT_RETRY_POLICY, maxRetries: 0 } });
  const planId = photosPlan(f.store);
  if (status === 'pending') return { f, planId, jobId: f.store.enqueue(planId).id };
  const run = f.store.acquirePlanRun(planId);
  const subject = { f, planId, jobId: run.jobId, run };
  if (status === 'paused') run.pause();
  if (status === 'interrupted') run.interrupt('received SIGTERM');
  if (status === 'failed') run.fail(new Error('disk on fire'));
  if (status === 'completed') run.complete();
  if (status === 'cancelled') run.cancel();
  assert.equal(f.store.job(run.jobId)!.status, status);
  return subject;
}

/** How each legal transition happens in the product. */
const PERFORM: Record<string, (s: Subject) => unknown> = {
  'pending>running': (s) => s.f.store.acquirePlanRun(s.planId),
  'pending>cancelled': (s) => s.f.store.cancelJob(s.jobId),
  'pending>interrupted': (s) => s.f.store.stopWaiting(s.jobId, 'stopped while waiting to retry'),
  'running>paused': (s) => s.run!.pause(),
  'running>completed': (s) => s.run!.complete(),
  'running>failed': (s) => s.run!.fail(new Error('disk on fire')),
  'running>cancelled': (s) => s.run!.cancel(),
  'running>interrupted': (s) => s.run!.interrupt('received SIGINT'),
  'paused>running': (s) => s.run!.resume(),
  // The daemon paused a job just as its backup finished (seen under load): the run still completes.
  'paused>completed': (s) => s.run!.complete(),
  'paused>failed': (s) => s.run!.fail(new Error('upload in flight failed')),
  'paused>cancelled': (s) => s.f.store.cancelJob(s.jobId),
  'paused>interrupted': (s) => {
    s.f.clock.advance(s.f.store.staleAfterMs + 1);
    s.f.store.detectStaleJobs();
  },
  'interrupted>running': (s) => s.f.store.acquirePlanRun(s.planId),
  'interrupted>pending': (s) => s.f.store.requeueJob(s.jobId),
  'interrupted>cancelled': (s) => s.f.store.cancelJob(s.jobId),
  'failed>pending': (s) => s.f.store.requeueJob(s.jobId),
};

const LEGAL = JOB_STATUSES.flatMap((from) => TRANSITIONS[from].map((to) => ({ from, to, key: `${from}>${to}` })));

test('every transition in the table has a test below', () => {
  assert.deepEqual(Object.keys(PERFORM).sort(), LEGAL.map((l) => l.key).sort());
});

for (const { from, to, key } of LEGAL) {
  test(`legal: ${from} → ${to}`, (t) => {
    const subject = subjectIn(t, from);
    PERFORM[key]!(subject);
    assert.equal(subject.f.store.job(subject.jobId)!.status, to);
  });
}

test('canTransition and assertTransition agree with the table for every pair', () => {
  for (const from of JOB_STATUSES) {
    for (const to of JOB_STATUSES) {
      const legal = TRANSITIONS[from].includes(to);
      assert.equal(canTransition(from, to), legal, `${from} → ${to}`);
      if (legal) assertTransition(1, from, to);
      else assert.throws(() => assertTransition(1, from, to), IllegalTransitionError, `${from} → ${to}`);
    }
  }
});

test('illegal transitions are refused by the store with a clear error', async (t) => {
  await t.test('a completed job cannot be cancelled or requeued', (t) => {
    const { f, jobId } = subjectIn(t, 'completed');
    assert.throws(() => f.store.cancelJob(jobId), {
      name: 'IllegalTransitionError',
      message: `job ${jobId} cannot go from completed to cancelled (from completed it can only go to nothing: it is final)`,
    });
    assert.throws(() => f.store.requeueJob(jobId), IllegalTransitionError);
    assert.equal(f.store.job(jobId)!.status, 'completed');
  });

  await t.test('a running job cannot be resumed', (t) => {
    const { run } = subjectIn(t, 'running');
    assert.throws(() => run!.resume(), /cannot go from running to running \(from running it can only go to paused, completed, failed, cancelled, interrupted\)/);
  });

  await t.test('a pending job cannot be requeued, a failed one cannot be cancelled', (t) => {
    const pending = subjectIn(t, 'pending');
    assert.throws(() => pending.f.store.requeueJob(pending.jobId), /cannot go from pending to pending/);
    const failed = subjectIn(t, 'failed');
    assert.throws(() => failed.f.store.cancelJob(failed.jobId), /cannot go from failed to cancelled/);
  });

  await t.test('a run whose job has ended can no longer change it', (t) => {
    const { f, jobId, run } = subjectIn(t, 'cancelled');
    assert.throws(() => run!.complete(), JobLostError);
    assert.throws(() => run!.heartbeat(), { message: `job ${jobId} was cancelled` });
    assert.equal(f.store.job(jobId)!.status, 'cancelled');
  });
});

test('every status change is in the event log', (t) => {
  const { f, jobId, run } = subjectIn(t, 'running');
  run!.pause();
  run!.resume();
  run!.complete();
  assert.deepEqual(
    f.store.events(jobId).map((e) => e.kind),
    ['created', 'started', 'paused', 'resumed', 'completed'],
  );
});
