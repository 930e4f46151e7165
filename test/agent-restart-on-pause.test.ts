// A run the pause gate cannot reach into (a scaled-out coordinator) is paused by stopping it and
// starting it again on resume, within the same task of the task manager. The real scaled-out run is in
// server-scale-out.test.ts; here the runs are stand-ins that end when told or when their signal aborts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackupResult } from '../src/engine/backup/backup.ts';
import type { BackupProgress } from '../src/engine/backup/progress.ts';
import { TaskManager, TaskStopped } from '../src/daemon/task-manager.ts';
import { stoppedWhilePaused } from '../src/agent/restart-on-pause.ts';

const progress = (filesDone: number) => ({ filesDone }) as BackupProgress;

/** Each start is a run that ends when `finish` is called or rejects when its signal aborts. */
function runs() {
  const started: AbortSignal[] = [];
  let finish: ((result: BackupResult) => void) | undefined;
  const start = (signal: AbortSignal) => {
    started.push(signal);
    const n = started.length;
    return {
      progress: () => progress(n),
      execute: () =>
        new Promise<BackupResult>((resolve, reject) => {
          finish = resolve;
          signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true });
        }),
    };
  };
  return { started, start, finish: (r: BackupResult) => finish!(r) };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('paused, the run stops and is not started again until the resume; then it runs again and its result is the task’s', async () => {
  const r = runs();
  let stops = 0;
  let outcome: Promise<BackupResult> | undefined;
  let shown: BackupProgress | undefined;
  const tasks = new TaskManager({
    run: async (_task, control) => {
      const run = stoppedWhilePaused(r.start, control, { beforeStart: () => progress(0), onStopped: () => stops++ });
      shown = run.progress();
      outcome = run.execute();
      await outcome;
    },
  });
  tasks.submit({ id: 'j', key: 'plan', reason: 'manual' });
  await turn();
  assert.equal(shown?.filesDone, 0, 'before the first start');
  assert.equal(r.started.length, 1);
  tasks.pause('j');
  await turn();
  assert.equal(r.started[0]!.aborted, true);
  assert.equal(stops, 1);
  assert.equal(r.started.length, 1, 'not started again while paused');
  assert.equal(tasks.get('j')?.state, 'running', 'the same task, keeping its slot');
  tasks.resume('j');
  await turn();
  assert.equal(r.started.length, 2);
  const result = { snapshotId: 'abc' } as BackupResult;
  r.finish(result);
  assert.equal(await outcome, result);
  await tasks.idle();
});

test('cancelled while paused, it ends with the stop, not started again; a failure that is not a pause is the run’s', async () => {
  const r = runs();
  let ended: unknown;
  const tasks = new TaskManager({
    run: async (_task, control) => {
      await stoppedWhilePaused(r.start, control, { beforeStart: () => progress(0), onStopped: () => {} })
        .execute()
        .catch((err: unknown) => {
          ended = err;
          assert.ok(control.signal.reason instanceof TaskStopped);
        });
    },
  });
  tasks.submit({ id: 'j', key: 'plan', reason: 'manual' });
  await turn();
  tasks.pause('j');
  await turn();
  tasks.cancel('j');
  await tasks.idle();
  assert.equal((ended as Error).name, 'InterruptedError');
  assert.equal(r.started.length, 1);

  const failing = new TaskManager({
    run: (_task, control) =>
      stoppedWhilePaused(() => ({ progress: () => progress(0), execute: () => Promise.reject(new Error('disk full')) }), control, { beforeStart: () => progress(0), onStopped: () => assert.fail('not a pause') })
        .execute()
        .then(() => {}),
    onEvent: (e) => {
      if (e.type === 'finished') ended = e.error;
    },
  });
  failing.submit({ id: 'k', key: 'plan', reason: 'manual' });
  await failing.idle();
  assert.equal((ended as Error).message, 'disk full');
});
