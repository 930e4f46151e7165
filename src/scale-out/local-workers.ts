// Worker processes on this machine for the in-process shard queue: each is forked with an IPC channel
// over which it claims shards, heartbeats and reports (scale-out/shard-worker-process.ts). The queue alone
// decides what a silent worker loses: a worker that exits is noticed by its missing heartbeats, exactly
// like a worker on another machine.
import { fork, type ChildProcess } from 'node:child_process';
import { siblingModule } from '../engine/sibling-module.ts';
import { CHUNK_THREAD_BYTES, threadLimit } from '../engine/thread-budget.ts';
import { NODE_ENVIRONMENT, NODE_FLAGS } from '../node-flags.ts';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './shard-worker-process.ts';
import type { ShardWork } from './shard-worker.ts';
import type { MemoryShardQueue } from './shard-queue.ts';

export interface LocalWorker {
  readonly name: string;
  readonly child: ChildProcess;
}

export interface LocalWorkerOptions extends Omit<WorkerSetup, 'type'> {
  /** Called when a worker starts a shard. */
  readonly onStarted?: (worker: string, index: number) => void;
  /** Called with each heartbeat's progress of a worker's shard and what it has stored (`bytes`: the shard's estimated size). */
  readonly onProgress?: (worker: string, index: number, bytes: number, work: ShardWork) => void;
  /** The replicas worker `index` (from 0) writes to, when each has its own (default: all of `locations`). */
  readonly locationsOf?: (index: number) => readonly string[];
}

/**
 * Chunk worker threads of each of `count` worker processes on a machine that runs `cores` of them (one
 * per core, within its memory: thread-budget.ts), shared among the processes. Each process starting a thread per core would run `count` times as many as there are
 * cores, every one costing its start (~0.25 CPU-s) and memory, and all competing for the same cores.
 */
export function chunkThreadsPerWorker(count: number, cores = threadLimit(CHUNK_THREAD_BYTES)): number {
  return Math.max(1, Math.ceil(cores / Math.max(1, count)));
}

/**
 * Forks `count` workers; they run until killed or their IPC channel closes. With `queue` they claim from
 * it over IPC; without, from pg-boss at `options.postgresUrl`.
 */
export function startLocalWorkers(queue: MemoryShardQueue | undefined, count: number, options: LocalWorkerOptions): LocalWorker[] {
  const { onStarted, onProgress, locationsOf, ...given } = options;
  const setup = { ...given, chunkWorkers: given.chunkWorkers ?? chunkThreadsPerWorker(count) };
  return Array.from({ length: count }, (_, i) => {
    const name = `local-${i + 1}`;
    // Coffer's Node flags even when this process was started without them; its own come after, and win.
    const child = fork(siblingModule(import.meta.url, 'shard-worker-process'), [], { execArgv: [...NODE_FLAGS, ...process.execArgv], env: { ...NODE_ENVIRONMENT, ...process.env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // A worker that could not be started, or a message to one that has just died, is an 'error' event,
    // which would end the coordinator without a listener; the worker counts as gone (workerGone).
    child.on('error', () => {});
    child.on('message', (m: WorkerRequest) => {
      const reply = (value: unknown): void => {
        if (child.connected) child.send({ type: 'reply', id: m.id, value } satisfies WorkerReply);
      };
      if (m.type === 'started') return onStarted?.(name, m.index);
      if (m.type === 'progress') return onProgress?.(name, m.index, m.bytes, m.work);
      if (!queue) return;
      switch (m.type) {
        case 'claim':
          return reply(queue.claim(name, Math.max(0, Math.min(64, m.capacity))));
        case 'heartbeat':
          return reply(queue.heartbeat(m.claim, m.progress));
        case 'finish':
          return reply(queue.finish(m.claim, m.outcome));
      }
    });
    child.send({ type: 'setup', ...setup, ...(locationsOf ? { locations: locationsOf(i) } : {}) } satisfies WorkerSetup);
    return { name, child };
  });
}

/** Whether a worker has ended, or never started. */
export function workerGone(w: LocalWorker): boolean {
  return w.child.pid === undefined || w.child.exitCode !== null || w.child.signalCode !== null;
}

/** Stops the workers (their current shards are left to the queue's heartbeat timeout). */
export async function stopLocalWorkers(workers: readonly LocalWorker[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (workerGone(w)) return resolve();
          w.child.once('exit', () => resolve());
          w.child.kill('SIGTERM');
        }),
    ),
  );
}
