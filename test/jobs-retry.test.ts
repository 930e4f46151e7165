import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RETRY_POLICY, classifyError, nextRetry, retryDelay, type RetryPolicy } from '../src/jobs/retry.ts';
import { StoreError } from '../src/store/store.ts';
import { jobFixture, photosPlan } from './helpers/jobs.ts';

const S = 1000;

test('retry delays per error class', () => {
  const table = [1, 2, 3, 4, 5].map((attempt) => [attempt, retryDelay(attempt, 'other') / S, retryDelay(attempt, 'network') / S]);
  assert.deepEqual(table, [
    [1, 30, 60],
    [2, 60, 120],
    [3, 120, 300],
    // A policy with more retries than delays keeps waiting the longest delay.
    [4, 120, 300],
    [5, 120, 300],
  ]);
  const policy: RetryPolicy = { maxRetries: 5, delaysMs: { other: [1, 2], network: [10] } };
  assert.deepEqual([1, 2, 3].map((a) => [retryDelay(a, 'other', policy), retryDelay(a, 'network', policy)]), [[1, 10], [2, 10], [2, 10]]);
  assert.throws(() => retryDelay(0, 'other'), RangeError);
  assert.throws(() => retryDelay(1, 'other', { maxRetries: 1, delaysMs: { other: [], network: [1] } }), /no delays for other errors/);
});

test('nextRetry stops at the limit', () => {
  assert.deepEqual([0, 1, 2, 3].map((used) => nextRetry(used, 'network')), [
    { attempt: 1, delayMs: 60 * S },
    { attempt: 2, delayMs: 120 * S },
    { attempt: 3, delayMs: 300 * S },
    undefined,
  ]);
  assert.equal(nextRetry(0, 'other', { ...DEFAULT_RETRY_POLICY, maxRetries: 0 }), undefined);
});

test('classifyError: network errors by StoreError kind or Node error code, anywhere in the cause chain', () => {
  const coded = (code: string) => Object.assign(new Error(code), { code });
  const cases: [string, unknown, string][] = [
    ['transient StoreError', new StoreError('transient', 'S3 said 503'), 'network'],
    ['denied StoreError', new StoreError('denied', 'access denied'), 'other'],
    ['conflict StoreError', new StoreError('conflict', 'object differs'), 'other'],
    ...['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN', 'EPIPE', 'ENOTFOUND', 'ENETDOWN'].map((code): [string, unknown, string] => [code, coded(code), 'network']),
    ['ENOENT', coded('ENOENT'), 'other'],
    ['wrapped twice', new Error('upload failed', { cause: new Error('socket', { cause: coded('ECONNRESET') }) }), 'network'],
    ['fetch failed', new TypeError('fetch failed', { cause: coded('ECONNREFUSED') }), 'network'],
    ['happy eyeballs', new AggregateError([coded('ECONNREFUSED'), coded('ENETUNREACH')]), 'network'],
    ['plain error', new Error('corrupt pack'), 'other'],
    ['a string', 'boom', 'other'],
    ['undefined', undefined, 'other'],
  ];
  for (const [name, err, expected] of cases) assert.equal(classifyError(err), expected, name);
  const loop: Error & { cause?: unknown } = new Error('loop');
  loop.cause = loop;
  assert.equal(classifyError(loop), 'other');
});

test('a failing job is retried with backoff until its retries are used up, keeping every error', (t) => {
  const f = jobFixture(t);
  const planId = photosPlan(f.store);
  const scheduled: (number | undefined)[] = [];
  let outcome;
  for (let attempt = 1; attempt <= 4; attempt++) {
    const run = f.store.acquirePlanRun(planId);
    assert.equal(run.jobId, 1);
    outcome = run.fail(new StoreError('transient', `attempt ${attempt}: connection reset`));
    scheduled.push(outcome.retry === undefined ? undefined : (outcome.retry.at - f.clock.time) / S);
    if (outcome.retry !== undefined) {
      assert.deepEqual(f.store.dueJobs(), []);
      f.clock.advance(outcome.retry.delayMs);
      assert.deepEqual(f.store.dueJobs().map((j) => [j.id, j.status, j.retryCount]), [[1, 'pending', attempt]]);
    }
  }
  assert.deepEqual(scheduled, [60, 120, 300, undefined]);
  assert.equal(outcome!.job.status, 'failed');
  assert.equal(outcome!.job.error, 'attempt 4: connection reset');
  assert.deepEqual(
    f.store.runs(1).map((r) => [r.run, r.outcome, r.error, r.errorClass]),
    [1, 2, 3, 4].map((n) => [n, 'failed', `attempt ${n}: connection reset`, 'network']),
  );
  assert.deepEqual(
    f.store.events(1).filter((e) => ['failed', 'retry-scheduled', 'gave-up'].includes(e.kind)).map((e) => e.message),
    [
      'attempt 1: connection reset',
      'retry 1 of 3 in 60 s (network error)',
      'attempt 2: connection reset',
      'retry 2 of 3 in 120 s (network error)',
      'attempt 3: connection reset',
      'retry 3 of 3 in 300 s (network error)',
      'attempt 4: connection reset',
      'no retries left (3 of 3 used); the job stays failed',
    ],
  );
  // Over its limit the job stays failed: the next run of the plan is a new job.
  assert.equal(f.store.acquirePlanRun(planId).jobId, 2);
});

test('the retry policy is configurable per store', (t) => {
  const f = jobFixture(t, { retryPolicy: { maxRetries: 1, delaysMs: { other: [5 * S], network: [7 * S] } } });
  const planId = photosPlan(f.store);
  const first = f.store.acquirePlanRun(planId).fail(new Error('corrupt source file'));
  assert.deepEqual(first.retry, { attempt: 1, delayMs: 5 * S, at: f.clock.time + 5 * S });
  assert.equal(f.store.acquirePlanRun(planId).fail(new Error('again')).retry, undefined);
});
