// Worker processes on this machine for the in-process shard queue: each is forked with an IPC channel
// over which it claims shards, heartbeats and reports (agent/shard-worker-process.ts). The queue alone
// decides what a silent worker loses: a worker that exits is noticed by its missing heartbeats, exactly
// like a worker on another machine.
import { fork, type ChildProcess } from 'node:child_process';
import { siblingModule } from '../../engine/sibling-module.ts';
import type { WorkerReply, WorkerRequest, WorkerSetup } from '../../agent/shard-worker-process.ts';
import type { MemoryShardQueue } from './shard-queue.ts';

export interface LocalWorker {
  readonly name: string;
  readonly child: ChildProcess;
}

export interface LocalWorkerOptions extends Omit<WorkerSetup, 'type'> {
  /** Called when a worker starts a shard. */
  readonly onStarted?: (worker: string, index: number) => void;
}


/** Forks `count` workers serving `queue`; they run until killed or their IPC channel closes. */
export function startLocalWorkers(queue: MemoryShardQueue, count: number, options: LocalWorkerOptions): LocalWorker[] {
  const { onStarted, ...setup } = options;
  return Array.from({ length: count }, (_, i) => {
    const name = `local-${i + 1}`;
    const child = fork(siblingModule(import.meta.url, '../../agent/shard-worker-process'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m: WorkerRequest) => {
      const reply = (value: unknown): void => {
        if (child.connected) child.send({ type: 'reply', id: m.id, value } satisfies WorkerReply);
      };
      switch (m.type) {
        case 'claim':
          return reply(queue.claim(name, Math.max(0, Math.min(64, m.capacity))));
        case 'heartbeat':
          return reply(queue.heartbeat(m.claim, m.progress));
        case 'finish':
          return reply(queue.finish(m.claim, m.outcome));
        case 'started':
          return onStarted?.(name, m.index);
      }
    });
    child.send({ type: 'setup', ...setup } satisfies WorkerSetup);
    return { name, child };
  });
}

/** Stops the workers (their current shards are left to the queue's heartbeat timeout). */
export async function stopLocalWorkers(workers: readonly LocalWorker[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
          w.child.once('exit', () => resolve());
          w.child.kill('SIGTERM');
        }),
    ),
  );
}
