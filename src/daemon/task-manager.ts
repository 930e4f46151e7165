// The task manager: runs tasks (one backup of a plan each) with at most `concurrency` at once and a
// queue behind the limit that drains in priority order, one task per key (plan) at a time, pause and
// resume (everything, or one task), and cancel. It knows nothing of backups or of where job state is
// kept: the caller's `run` function does the work and records it; this module only decides what runs
// when, and tells the run to pause (its gate) or stop (its signal).
//
// Rules:
// - submit() refuses a task whose key already has one queued or running: a duplicate trigger is
//   skipped, and the caller logs it. With `sameKey: 'wait'` (the fleet agent: each task is a job the
//   server recorded, which must run) it queues instead, and starts once its key's task has ended.
//   A task whose id is live is always refused.
// - The queue is ordered by priority (higher first), then by submission time.
// - pauseAll(): nothing new starts; running tasks' gates close, so they finish the pack in hand and
//   wait. resumeAll() reopens them. pause(id)/resume(id) do the same for one task; a paused queued task
//   keeps its place but is passed over. A paused running task keeps its slot.
// - cancel(id): a queued task leaves the queue; a running one gets its signal aborted with a
//   TaskStopped('cancelled') reason, and checkpoints and stops.
// - shutdown(): nothing new starts, running tasks get TaskStopped('shutdown'), and the returned promise
//   resolves when every one has returned. Queued tasks are dropped (the caller keeps them durable).
//
// Interface:
//   new TaskManager({ run, concurrency = 3, sameKey = 'skip', clock?, onEvent? })
//   submit({ id, key, reason, priority?, payload? }) → { accepted: true, task } | { accepted: false, existing }
//   list() → TaskInfo[] · get(id) · pauseAll() · resumeAll() · pause(id) · resume(id) · cancel(id)
//   setConcurrency(n) · idle() · shutdown()
//   run(task, { signal, gate }) → Promise: the work; its rejection is reported as a 'finished' event
import { PauseGate } from '../engine/pause-gate.ts';
import { systemClock, type Clock } from './clock.ts';

export const DEFAULT_CONCURRENCY = 3;

/** Why a task was started: its schedule, an overdue slot, a person, a retry, or a resume after a restart. */
export type TaskReason = 'schedule' | 'overdue' | 'manual' | 'retry' | 'resume';

export interface TaskSpec<P = unknown> {
  /** Unique among live tasks; the daemon uses the job id. */
  readonly id: string;
  /** At most one task per key is queued or running (the plan name). */
  readonly key: string;
  readonly reason: TaskReason;
  readonly priority?: number;
  readonly payload?: P;
}

export type TaskState = 'queued' | 'running';

export interface TaskInfo {
  readonly id: string;
  readonly key: string;
  readonly reason: TaskReason;
  readonly priority: number;
  readonly state: TaskState;
  /** Paused by itself (pause(id)) or through pauseAll(). */
  readonly paused: boolean;
  readonly queuedAt: number;
  readonly startedAt?: number;
}

export interface TaskControl {
  /** Aborted with a TaskStopped reason on cancel or shutdown. */
  readonly signal: AbortSignal;
  /** Closed while the task or everything is paused. */
  readonly gate: PauseGate;
}

/** The abort reason a running task gets: cancelled (the job ends) or shutdown (it resumes at the next start). */
export class TaskStopped extends Error {
  override name = 'TaskStopped';
  readonly kind: 'cancelled' | 'shutdown';

  constructor(kind: 'cancelled' | 'shutdown', message: string) {
    super(message);
    this.kind = kind;
  }
}

export class UnknownTaskError extends Error {
  override name = 'UnknownTaskError';
}

export type TaskEvent =
  | { readonly type: 'queued' | 'started' | 'paused' | 'resumed' | 'cancelled'; readonly task: TaskInfo }
  | { readonly type: 'finished'; readonly task: TaskInfo; readonly error?: unknown }
  | { readonly type: 'duplicate'; readonly task: TaskInfo; readonly spec: TaskSpec<unknown> }
  | { readonly type: 'paused-all' | 'resumed-all' };

export interface TaskManagerOptions<P> {
  readonly run: (task: TaskInfo & { readonly payload: P | undefined }, control: TaskControl) => Promise<void>;
  readonly concurrency?: number;
  /** A task whose key has one live: refused ('skip', the daemon's duplicate trigger) or queued behind it ('wait'). */
  readonly sameKey?: 'skip' | 'wait';
  readonly clock?: Clock;
  readonly onEvent?: (event: TaskEvent) => void;
}

interface Entry<P> {
  readonly spec: TaskSpec<P>;
  readonly seq: number;
  readonly queuedAt: number;
  readonly gate: PauseGate;
  state: TaskState;
  startedAt?: number;
  controller?: AbortController;
  done?: Promise<void>;
}

export class TaskManager<P = unknown> {
  private readonly options: TaskManagerOptions<P>;
  private readonly clock: Clock;
  private readonly global = new PauseGate();
  private readonly entries = new Map<string, Entry<P>>();
  private concurrency: number;
  private seq = 0;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: TaskManagerOptions<P>) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.concurrency = validConcurrency(options.concurrency ?? DEFAULT_CONCURRENCY);
  }

  get globallyPaused(): boolean {
    return this.global.paused;
  }

  get limit(): number {
    return this.concurrency;
  }

  submit(spec: TaskSpec<P>): { accepted: true; task: TaskInfo } | { accepted: false; existing: TaskInfo } {
    const waits = this.options.sameKey === 'wait';
    const existing = [...this.entries.values()].find((e) => e.spec.id === spec.id || (!waits && e.spec.key === spec.key));
    if (existing) {
      this.emit({ type: 'duplicate', task: this.info(existing), spec });
      return { accepted: false, existing: this.info(existing) };
    }
    if (this.stopping) throw new Error('the task manager is shutting down');
    const entry: Entry<P> = { spec, seq: this.seq++, queuedAt: this.clock.now(), gate: new PauseGate(this.global), state: 'queued' };
    this.entries.set(spec.id, entry);
    this.emit({ type: 'queued', task: this.info(entry) });
    this.pump();
    return { accepted: true, task: this.info(entry) };
  }

  get(id: string): TaskInfo | undefined {
    const entry = this.entries.get(id);
    return entry && this.info(entry);
  }

  /** Running tasks first, then the queue in the order it will drain. */
  list(): TaskInfo[] {
    const running = [...this.entries.values()].filter((e) => e.state === 'running').sort((a, b) => a.seq - b.seq);
    return [...running, ...this.queue()].map((e) => this.info(e));
  }

  pauseAll(): void {
    if (this.global.paused) return;
    this.global.pause();
    this.emit({ type: 'paused-all' });
  }

  resumeAll(): void {
    if (!this.global.paused) return;
    this.global.resume();
    this.emit({ type: 'resumed-all' });
    this.pump();
  }

  pause(id: string): TaskInfo {
    const entry = this.mustEntry(id);
    if (!entry.gate.pausedHere) {
      entry.gate.pause();
      this.emit({ type: 'paused', task: this.info(entry) });
    }
    return this.info(entry);
  }

  resume(id: string): TaskInfo {
    const entry = this.mustEntry(id);
    if (entry.gate.pausedHere) {
      entry.gate.resume();
      this.emit({ type: 'resumed', task: this.info(entry) });
      this.pump();
    }
    return this.info(entry);
  }

  cancel(id: string): TaskInfo {
    const entry = this.mustEntry(id);
    const info = this.info(entry);
    if (entry.state === 'queued') {
      this.entries.delete(id);
      entry.gate.dispose();
      this.emit({ type: 'cancelled', task: info });
      this.wakeIdle();
    } else if (!entry.controller!.signal.aborted) {
      entry.controller!.abort(new TaskStopped('cancelled', `job ${id} was cancelled`));
      this.emit({ type: 'cancelled', task: info });
    }
    return info;
  }

  setConcurrency(n: number): void {
    this.concurrency = validConcurrency(n);
    this.pump();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops everything: the queue is dropped, running tasks are told to checkpoint and stop; resolves when they have. */
  async shutdown(reason = 'the daemon is stopping'): Promise<void> {
    this.stopping = true;
    const running = [...this.entries.values()].filter((e) => e.state === 'running');
    for (const entry of this.entries.values()) {
      if (entry.state === 'queued') {
        this.entries.delete(entry.spec.id);
        entry.gate.dispose();
      }
    }
    for (const entry of running) entry.controller!.abort(new TaskStopped('shutdown', reason));
    await Promise.all(running.map((e) => e.done));
  }

  private queue(): Entry<P>[] {
    return [...this.entries.values()]
      .filter((e) => e.state === 'queued')
      .sort((a, b) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0) || a.seq - b.seq);
  }

  private pump(): void {
    if (this.stopping || this.global.paused) return;
    const running = [...this.entries.values()].filter((e) => e.state === 'running');
    const busyKeys = new Set(running.map((e) => e.spec.key));
    for (const entry of this.queue()) {
      if (running.length >= this.concurrency) break;
      if (entry.gate.paused || busyKeys.has(entry.spec.key)) continue;
      this.start(entry);
      running.push(entry);
      busyKeys.add(entry.spec.key);
    }
  }

  private start(entry: Entry<P>): void {
    entry.state = 'running';
    entry.startedAt = this.clock.now();
    entry.controller = new AbortController();
    this.emit({ type: 'started', task: this.info(entry) });
    const control: TaskControl = { signal: entry.controller.signal, gate: entry.gate };
    entry.done = (async () => {
      let error: unknown;
      try {
        await this.options.run({ ...this.info(entry), payload: entry.spec.payload }, control);
      } catch (err) {
        error = err;
      }
      const info = this.info(entry);
      this.entries.delete(entry.spec.id);
      entry.gate.dispose();
      this.emit({ type: 'finished', task: info, ...(error === undefined ? {} : { error }) });
      this.pump();
      this.wakeIdle();
    })();
  }

  private wakeIdle(): void {
    if (this.entries.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private mustEntry(id: string): Entry<P> {
    const entry = this.entries.get(id);
    if (!entry) throw new UnknownTaskError(`no job ${id} is queued or running; coffer jobs lists them`);
    return entry;
  }

  private info(entry: Entry<P>): TaskInfo {
    return {
      id: entry.spec.id,
      key: entry.spec.key,
      reason: entry.spec.reason,
      priority: entry.spec.priority ?? 0,
      state: entry.state,
      paused: entry.gate.paused,
      queuedAt: entry.queuedAt,
      ...(entry.startedAt !== undefined ? { startedAt: entry.startedAt } : {}),
    };
  }

  private emit(event: TaskEvent): void {
    this.options.onEvent?.(event);
  }
}

function validConcurrency(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`concurrency must be a whole number of at least 1, not ${n}`);
  return n;
}
