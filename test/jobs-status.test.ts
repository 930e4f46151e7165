import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreError } from '../src/store/store.ts';
import { statusReport } from '../src/jobs/status.ts';
import { jobFixture, photosPlan, type Fixture } from './helpers/jobs.ts';

const MINUTE = 60_000;

/** photos (ssd + nas): a failed job 1 that still reached the ssd; docs (ssd): a completed job 2; photos job 3 running. */
function history(f: Fixture) {
  const photos = photosPlan(f.store);
  const docs = f.store.ensurePlan('docs', [{ name: 'ssd', location: '/mnt/ssd/coffer' }]).id;
  const [nas, ssd] = f.store.plan(photos)!.destinations.map((d) => d.id);

  const first = f.store.acquirePlanRun(photos);
  first.updateDestination(ssd!, { bytesTotal: 100, bytesDone: 100 });
  first.completeDestination(ssd!);
  first.failDestination(nas!, new StoreError('denied', 'permission denied on sftp://backup:hunter2@nas/coffer'));
  first.fail(new Error('1 of 2 destinations failed'));
  f.clock.advance(60 * MINUTE);

  const second = f.store.acquirePlanRun(docs);
  second.completeDestination(ssd!);
  second.complete();
  f.clock.advance(10 * MINUTE);

  const third = f.store.acquirePlanRun(photos);
  third.heartbeat({ stage: 'uploading', bytesTotal: 1000, bytesDone: 250, speed: 50 });
  third.updateDestination(ssd!, { bytesTotal: 1000, bytesDone: 400, speed: 80 });
  f.clock.advance(5000);
  return { photos, docs, nas: nas!, ssd: ssd!, third };
}

test('status: last success and live progress per destination, live jobs, open problems', (t) => {
  const f = jobFixture(t, { retryPolicy: { maxRetries: 0, delaysMs: { other: [1], network: [1] } } });
  const { nas, ssd, third } = history(f);
  const report = statusReport(f.store);

  assert.deepEqual(
    report.destinations.map((d) => ({
      name: d.destination.name,
      last: d.lastSuccess && [d.lastSuccess.jobId, d.lastSuccess.planName, d.lastSuccess.ageMs / MINUTE],
      active: d.active.map((a) => [a.jobId, a.status, a.bytesDone, a.speed]),
    })),
    [
      // The nas never got a snapshot; the ssd got one from job 1 (which failed elsewhere) and then from job 2.
      { name: 'nas', last: undefined, active: [[3, 'pending', 0, 0]] },
      { name: 'ssd', last: [2, 'docs', 10 + 5 / 60], active: [[3, 'running', 400, 80]] },
    ],
  );
  assert.equal(report.destinations[0]!.destination.location, 'sftp://backup@nas/coffer');

  assert.deepEqual(
    report.live.map((l) => [l.job.id, l.job.status, l.job.stage, l.job.bytesDone, l.heartbeatAgeMs, l.destinations.length]),
    [[third.jobId, 'running', 'uploading', 250, 5000, 2]],
  );
  assert.deepEqual(
    report.problems.map((p) => [p.job.id, p.job.status, p.job.error, p.runs.map((r) => r.error)]),
    [[1, 'failed', '1 of 2 destinations failed', ['1 of 2 destinations failed']]],
  );
  assert.deepEqual(
    f.store.jobDestinations(1).map((d) => [d.destinationId, d.status, d.error]),
    [
      [nas, 'failed', 'permission denied on sftp://nas/coffer'],
      [ssd, 'completed', null],
    ],
  );
  assert.deepEqual(report.queued, []);
});

test('status: a later success clears a failure, interruptions and scheduled retries show with their errors', (t) => {
  const f = jobFixture(t, { retryPolicy: { maxRetries: 0, delaysMs: { other: [1], network: [1] } } });
  const { docs, third, ssd } = history(f);
  third.completeDestination(ssd);
  third.complete();
  f.store.acquirePlanRun(docs).interrupt('received SIGTERM');
  const mail = f.store.ensurePlan('mail', [{ name: 'ssd', location: '/mnt/ssd/coffer' }]).id;
  const retrying = f.open({ retryPolicy: { maxRetries: 2, delaysMs: { other: [MINUTE], network: [MINUTE] } } });
  retrying.acquirePlanRun(mail).fail(new Error('mail server dump failed'));

  const report = statusReport(f.store);
  assert.deepEqual(report.problems.map((p) => [p.job.planName, p.job.status, p.job.error]), [['docs', 'interrupted', 'received SIGTERM']]);
  assert.deepEqual(
    report.queued.map((j) => [j.planName, j.status, j.error, j.nextAttemptAt! - f.clock.time]),
    [['mail', 'pending', 'mail server dump failed', MINUTE]],
  );
  assert.deepEqual(report.live, []);
  assert.equal(report.destinations.find((d) => d.destination.name === 'nas')!.lastSuccess, undefined);
});

test('reset deletes the job history of one plan or of all, never while a run is alive', (t) => {
  const f = jobFixture(t, { retryPolicy: { maxRetries: 0, delaysMs: { other: [1], network: [1] } } });
  const { photos, docs, third } = history(f);
  assert.throws(() => f.store.reset({ planId: photos }), /plan photos is running as job 3 \(pid 1000\); stop it or let it finish/);
  assert.throws(() => f.store.reset(), /plan photos is running as job 3/);
  third.complete();

  assert.equal(f.store.reset({ planId: photos }), 2);
  assert.deepEqual(f.store.selectJobs('ORDER BY j.id').map((j) => [j.id, j.planName]), [[2, 'docs']]);
  assert.deepEqual(f.store.events(1), []);
  assert.deepEqual(f.store.jobDestinations(3), []);
  assert.equal(f.store.sql.get<{ n: number }>('SELECT count(*) AS n FROM job_runs WHERE job_id IN (1, 3)')!.n, 0);

  assert.equal(f.store.reset(), 1);
  assert.deepEqual(f.store.selectJobs(''), []);
  // Plans and destinations stay; job ids are not reused.
  assert.deepEqual(f.store.plan(docs)!.destinations.map((d) => d.name), ['ssd']);
  assert.equal(f.store.acquirePlanRun(photos).jobId, 4);
});

test('status: of a plan only its newest failure is a problem; a retry whose waiting process is gone is not due', (t) => {
  let alive = true;
  const f = jobFixture(t, { retryPolicy: { maxRetries: 0, delaysMs: { other: [1], network: [1] } }, isAlive: () => alive });
  const photos = photosPlan(f.store);
  f.store.acquirePlanRun(photos).fail(new Error('nas unreachable'));
  f.clock.advance(MINUTE);
  f.store.acquirePlanRun(photos).fail(new Error('nas unreachable again'));
  assert.deepEqual(statusReport(f.store).problems.map((p) => [p.job.id, p.job.error]), [[2, 'nas unreachable again']]);

  const mail = f.store.ensurePlan('mail', [{ name: 'ssd', location: '/mnt/ssd/coffer' }]).id;
  const retrying = f.open({ retryPolicy: { maxRetries: 2, delaysMs: { other: [MINUTE], network: [MINUTE] } }, isAlive: () => alive });
  retrying.acquirePlanRun(mail).fail(new Error('dump failed'));
  assert.deepEqual(statusReport(f.store).queued.map((j) => [j.planName, j.orphaned]), [['mail', false]]);
  alive = false;
  assert.deepEqual(statusReport(f.store).queued.map((j) => [j.planName, j.orphaned]), [['mail', true]]);

  // The waiting process stopped on purpose: the job is interrupted, with the last attempt's error.
  const [queued] = statusReport(f.store).queued;
  f.store.stopWaiting(queued!.id, 'stopped while waiting to retry');
  const report = statusReport(f.store);
  assert.deepEqual(report.queued, []);
  assert.deepEqual(
    report.problems.map((p) => [p.job.planName, p.job.status, p.job.error]),
    [
      ['mail', 'interrupted', 'stopped while waiting to retry; the last attempt failed: dump failed'],
      ['photos', 'failed', 'nas unreachable again'],
    ],
  );
});
