import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskManager, TaskStopped, UnknownTaskError, type TaskControl, type TaskEvent, type TaskInfo } from '../src/daemon/task-manager.ts';

/** A task body the test finishes by hand; it records when it saw its gate close and open. */
class Body {
  readonly started: string[] = [];
  readonly finishers = new Map<string, (err?: Error) => void>();
  readonly controls = new Map<string, TaskControl>();
  readonly gateLog: string[] = [];

  run = (task: TaskInfo, control: TaskControl): Promise<void> => {
    this.started.push(task.id);
    this.controls.set(task.id, control);
    control.gate.onChange((paused) => this.gateLog.push(`${task.id}:${paused ? 'paused' : 'running'}`));
    return new Promise((resolve, reject) => {
      this.finishers.set(task.id, (err) => (err ? reject(err) : resolve()));
      control.signal.addEventListener('abort', () => reject(control.signal.reason), { once: true });
    });
  };

  finish(id: string, err?: Error): Promise<void> {
    this.finishers.get(id)!(err);
    return new Promise((resolve) => setImmediate(resolve));
  }
}

function manager(concurrency?: number) {
  const body = new Body();
  const events: TaskEvent[] = [];
  const tasks = new TaskManager({ run: body.run, ...(concurrency ? { concurrency } : {}), onEvent: (e) => events.push(e) });
  return { body, events, tasks };
}

const spec = (id: string, priority = 0) => ({ id, key: `plan-${id}`, reason: 'schedule' as const, priority });

test('at most 3 run at once by default; the queue drains in priority order, then first come first served', async () => {
  const { body, tasks } = manager();
  for (const [id, priority] of [['a', 0], ['b', 0], ['c', 0], ['d', 0], ['e', 5], ['f', 0], ['g', 5]] as const) tasks.submit(spec(id, priority));
  assert.deepEqual(body.started, ['a', 'b', 'c']);
  assert.deepEqual(tasks.list().map((t) => `${t.id}:${t.state}`), ['a:running', 'b:running', 'c:running', 'e:queued', 'g:queued', 'd:queued', 'f:queued']);
  await body.finish('b');
  assert.deepEqual(body.started, ['a', 'b', 'c', 'e']);
  await body.finish('a', new Error('disk full'));
  await body.finish('c');
  assert.deepEqual(body.started, ['a', 'b', 'c', 'e', 'g', 'd']);
  for (const id of ['e', 'g', 'd']) await body.finish(id);
  await body.finish('f');
  await tasks.idle();
  assert.deepEqual(tasks.list(), []);
});

test('one task per plan: a duplicate trigger is refused and reported, queued or running', async () => {
  const { body, events, tasks } = manager(1);
  assert.equal(tasks.submit(spec('a')).accepted, true);
  assert.equal(tasks.submit(spec('b')).accepted, true);
  const dupRunning = tasks.submit({ id: 'a2', key: 'plan-a', reason: 'manual' });
  const dupQueued = tasks.submit({ id: 'b2', key: 'plan-b', reason: 'schedule' });
  assert.deepEqual([dupRunning.accepted, dupQueued.accepted], [false, false]);
  assert.equal(!dupRunning.accepted && dupRunning.existing.id, 'a');
  assert.equal(events.filter((e) => e.type === 'duplicate').length, 2);
  await body.finish('a');
  // Once the run is over the plan may be queued again.
  assert.equal(tasks.submit({ id: 'a3', key: 'plan-a', reason: 'manual' }).accepted, true);
  assert.deepEqual(body.started, ['a', 'b']);
});

test("sameKey 'wait' (the fleet agent): a plan's next task queues behind the live one and starts when it ends; a live id is still refused", async () => {
  const body = new Body();
  const tasks = new TaskManager({ run: body.run, concurrency: 3, sameKey: 'wait' });
  tasks.submit({ id: 'a', key: 'plan-x', reason: 'manual' });
  assert.equal(tasks.submit({ id: 'b', key: 'plan-x', reason: 'manual' }).accepted, true);
  tasks.submit({ id: 'c', key: 'plan-y', reason: 'manual' });
  assert.equal(tasks.submit({ id: 'a', key: 'plan-z', reason: 'manual' }).accepted, false, 'the same job twice');
  assert.deepEqual(body.started, ['a', 'c'], 'b waits for a, c passes it: slots are free');
  await body.finish('c');
  assert.deepEqual(body.started, ['a', 'c']);
  await body.finish('a');
  assert.deepEqual(body.started, ['a', 'c', 'b']);
  await body.finish('b');
  await tasks.idle();
});

test('pause all: running gates close, nothing new starts; resume all reopens and drains', async () => {
  const { body, tasks } = manager(1);
  tasks.submit(spec('a'));
  tasks.submit(spec('b'));
  tasks.pauseAll();
  assert.equal(body.controls.get('a')!.gate.paused, true);
  await body.finish('a');
  assert.deepEqual(body.started, ['a'], 'a queued task does not start while everything is paused');
  tasks.resumeAll();
  assert.deepEqual(body.started, ['a', 'b']);
  assert.equal(body.controls.get('b')!.gate.paused, false);
  assert.deepEqual(body.gateLog, ['a:paused']);
});

test('pause and resume one task: a running one keeps its slot, a queued one is passed over', async () => {
  const { body, tasks } = manager(2);
  tasks.submit(spec('a'));
  tasks.submit(spec('b'));
  tasks.submit(spec('c'));
  tasks.submit(spec('d'));
  tasks.pause('a');
  tasks.pause('c');
  assert.equal(tasks.get('a')!.paused, true);
  assert.equal(body.controls.get('b')!.gate.paused, false);
  await body.finish('b');
  assert.deepEqual(body.started, ['a', 'b', 'd'], 'c is paused, so d goes first; a keeps its slot');
  tasks.resume('c');
  await body.finish('d');
  assert.deepEqual(body.started, ['a', 'b', 'd', 'c']);
  tasks.resume('a');
  assert.deepEqual(body.gateLog.filter((l) => l.startsWith('a')), ['a:paused', 'a:running']);
  assert.throws(() => tasks.pause('zz'), UnknownTaskError);
});

test('cancel: a queued task leaves the queue, a running one is told to stop with the reason cancelled', async () => {
  const { body, events, tasks } = manager(1);
  tasks.submit(spec('a'));
  tasks.submit(spec('b'));
  tasks.cancel('b');
  assert.deepEqual(tasks.list().map((t) => t.id), ['a']);
  tasks.cancel('a');
  const reason = body.controls.get('a')!.signal.reason;
  assert.ok(reason instanceof TaskStopped && reason.kind === 'cancelled');
  await new Promise((resolve) => setImmediate(resolve));
  await tasks.idle();
  const finished = events.find((e) => e.type === 'finished');
  assert.ok(finished && finished.type === 'finished' && finished.error === reason);
  assert.deepEqual(body.started, ['a']);
});

test('shutdown: running tasks get the shutdown reason and are awaited; the queue is dropped', async () => {
  const { body, tasks } = manager(1);
  tasks.submit(spec('a'));
  tasks.submit(spec('b'));
  tasks.pauseAll();
  await tasks.shutdown('SIGTERM');
  const reason = body.controls.get('a')!.signal.reason;
  assert.ok(reason instanceof TaskStopped && reason.kind === 'shutdown' && reason.message === 'SIGTERM');
  assert.equal(body.controls.get('a')!.gate.shared[0], 0, 'workers waiting on the gate are let go');
  assert.deepEqual(tasks.list(), []);
  assert.throws(() => tasks.submit(spec('c')), /shutting down/);
});

test('the concurrency limit can change while tasks run', async () => {
  const { body, tasks } = manager(1);
  for (const id of ['a', 'b', 'c']) tasks.submit(spec(id));
  tasks.setConcurrency(3);
  assert.deepEqual(body.started, ['a', 'b', 'c']);
  assert.throws(() => tasks.setConcurrency(0), /at least 1/);
});
