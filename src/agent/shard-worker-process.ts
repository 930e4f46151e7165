// A local worker process of a scaled-out backup (forked by the coordinator on the same machine). It
// reaches the coordinator's in-process shard queue over the IPC channel; the repository's location and
// password come in the first message, never on the command line or in the environment.
import { openStore } from '../store/open-store.ts';
import { Repository } from '../repo/repository.ts';
import { runShardWorker, type ClaimedShard, type ShardProgress, type ShardSource } from './shard-worker.ts';
import type { ShardOutcome } from '../engine/scale-out/scale-out.ts';

/** Sent by the coordinator first. */
export interface WorkerSetup {
  readonly type: 'setup';
  readonly locations: readonly string[];
  readonly password: string;
  readonly capacity: number;
  readonly heartbeatMs: number;
  readonly chunkWorkers?: number;
  readonly packSize?: number;
}

export type WorkerRequest =
  | { readonly type: 'claim'; readonly id: number; readonly capacity: number }
  | { readonly type: 'heartbeat'; readonly id: number; readonly claim: string; readonly progress: ShardProgress }
  | { readonly type: 'finish'; readonly id: number; readonly claim: string; readonly outcome: ShardOutcome }
  | { readonly type: 'started'; readonly id: number; readonly claim: string; readonly index: number };

export interface WorkerReply {
  readonly type: 'reply';
  readonly id: number;
  readonly value: unknown;
}

/** A request before the client numbers it. */
type Unsent = { [K in WorkerRequest['type']]: Omit<Extract<WorkerRequest, { type: K }>, 'id'> }[WorkerRequest['type']];

function ipcSource(): { source: ShardSource; started: (item: ClaimedShard) => void } {
  let next = 0;
  const waiting = new Map<number, (value: unknown) => void>();
  process.on('message', (m: WorkerReply) => {
    if (m.type !== 'reply') return;
    waiting.get(m.id)?.(m.value);
    waiting.delete(m.id);
  });
  const ask = <T>(request: Unsent): Promise<T> =>
    new Promise<T>((resolve) => {
      const id = next++;
      waiting.set(id, resolve as (value: unknown) => void);
      process.send!({ ...request, id });
    });
  return {
    source: {
      claim: (capacity) => ask<ClaimedShard[]>({ type: 'claim', capacity }),
      heartbeat: (claim, progress) => ask<boolean>({ type: 'heartbeat', claim, progress }),
      finish: (claim, outcome) => ask<void>({ type: 'finish', claim, outcome }),
    },
    started: (item) => process.send!({ type: 'started', id: -1, claim: item.claim, index: item.index }),
  };
}

async function main(): Promise<void> {
  const setup = await new Promise<WorkerSetup>((resolve) => process.once('message', (m: WorkerSetup) => resolve(m)));
  const stop = new AbortController();
  // The coordinator went away (its IPC channel closed): nothing would take the results.
  process.on('disconnect', () => stop.abort());
  const { source, started } = ipcSource();
  const openRepo = async (): Promise<Repository> => {
    const repo = await Repository.open(setup.locations.map((l) => openStore(l)), setup.password);
    return repo;
  };
  await runShardWorker(source, openRepo, {
    capacity: setup.capacity,
    heartbeatMs: setup.heartbeatMs,
    signal: stop.signal,
    onStart: started,
    run: { ...(setup.chunkWorkers ? { workers: setup.chunkWorkers } : {}), ...(setup.packSize ? { packSize: setup.packSize } : {}) },
  });
  process.disconnect?.();
}

main().catch((err: Error) => {
  process.stderr.write(`coffer: shard worker failed: ${err.message}\n`);
  process.exit(1);
});
