// A fixed set of worker threads that each answer one message per job, with at most `perWorker` jobs
// waiting at each worker. Used for CPU-heavy reads (restore, check --read-data).
import { Worker } from 'node:worker_threads';

interface PoolWorker {
  readonly worker: Worker;
  readonly waiting: Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>;
}

/** A worker of the pool stopped (an exception it did not catch, its heap limit, a crash): the pool takes no more jobs. */
export class WorkerFailedError extends Error {
  override readonly name = 'WorkerFailedError';
}

export class JobPool<Job extends { job: number }, Result extends { job: number }> {
  private readonly script: URL;
  private readonly workerData: unknown;
  private readonly label: string;
  private readonly workers: PoolWorker[] = [];
  private readonly limit: number;
  private readonly perWorker: number;
  private nextJob = 0;
  private slotWaiters: (() => void)[] = [];
  private closing = false;
  /**
   * Set once a worker has failed: every later job fails with it. A message posted to a worker that
   * has exited is dropped without a word, so a job sent to it would never be answered.
   */
  private failure?: WorkerFailedError;

  /**
   * `label` names the workers in errors ("restore worker"). Workers start as jobs need them, up to
   * `count`: a job that finds none idle starts one more. A restore of one small file then starts one
   * isolate, not one per core (each costs ~0.1 CPU-s to start and ~20 MiB).
   */
  constructor(script: URL, workerData: unknown, label: string, count: number, perWorker = 2) {
    this.script = script;
    this.workerData = workerData;
    this.label = label;
    this.limit = Math.max(1, count);
    this.perWorker = perWorker;
  }

  private startWorker(): PoolWorker {
    const state: PoolWorker = { worker: new Worker(this.script, { workerData: this.workerData }), waiting: new Map() };
    state.worker.on('message', (result: Result) => {
      state.waiting.get(result.job)?.resolve(result);
      state.waiting.delete(result.job);
      this.wake();
    });
    const fail = (why: string, cause?: Error): void => {
      if (this.closing) return;
      this.failure ??= new WorkerFailedError(`${this.label} failed: ${why}`, cause ? { cause } : {});
      for (const w of state.waiting.values()) w.reject(this.failure);
      state.waiting.clear();
      this.wake();
    };
    state.worker.on('error', (err) => fail(err.message, err));
    state.worker.on('exit', (code) => fail(`exited with code ${code}`));
    this.workers.push(state);
    return state;
  }

  /** An idle worker; else a new one while below the limit; else the least busy with room, if any. */
  private workerWithRoom(): PoolWorker | undefined {
    const idle = this.workers.find((w) => w.waiting.size === 0);
    if (idle) return idle;
    if (this.workers.length < this.limit) return this.startWorker();
    return this.workers.reduce<PoolWorker | undefined>((best, w) => (w.waiting.size < this.perWorker && (!best || w.waiting.size < best.waiting.size) ? w : best), undefined);
  }

  private wake(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Sends a job to an idle worker, a new one or the least busy, once one has room; resolves with its answer. */
  async run(make: (job: number) => { job: Job; transfer?: ArrayBuffer[] }): Promise<Result> {
    for (;;) {
      if (this.failure) throw this.failure;
      const free = this.workerWithRoom();
      if (free) {
        const { job, transfer } = make(this.nextJob++);
        return new Promise<Result>((resolve, reject) => {
          free.waiting.set(job.job, { resolve: resolve as (v: unknown) => void, reject });
          free.worker.postMessage(job, transfer ?? []);
        });
      }
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
