// This agent as a worker of scaled-out fleet runs: told that a run has shards for it (a `shards`
// message), it claims them from the server by capacity and backs each up into the run's repository with
// the ordinary worker loop (shard-worker.ts), through the same stores as its jobs (pre-signed URLs for
// server-held destinations), until the server says the run is over.
import { Repository } from '../repo/repository.ts';
import type { Store } from '../store/store.ts';
import { ServerError, type ServerClient } from './client.ts';
import type { DestinationRef } from './protocol.ts';
import { runShardWorker, type ClaimedShard, type ShardSource } from '../scale-out/shard-worker.ts';
import type { ShardOutcome } from '../engine/scale-out/scale-out.ts';

export interface FleetWorkerOptions {
  readonly client: ServerClient;
  readonly passphrase: () => Promise<string>;
  readonly openDestination: (ref: DestinationRef, signal: AbortSignal) => Store;
  /** Shards this agent backs up at once (the server gives fewer while it runs other jobs). */
  readonly capacity: number;
  readonly heartbeatMs: () => number;
  readonly log: (message: string) => void;
  readonly describeError: (err: unknown) => string;
  readonly spoolDir?: string;
}

/** A worker's way to one run's shards: the server's shard routes. */
function serverSource(client: ServerClient, run: string, over: AbortController): ShardSource {
  return {
    async claim(capacity) {
      const answer = await client.request<{ shards: ClaimedShard[]; over: boolean }>('POST', '/api/agent/shards/claim', { run, capacity }).catch((err) => {
        // Refused (the run is not this agent's to work on): stop; unreachable: ask again later.
        if (err instanceof ServerError && err.status >= 400 && err.status < 500) return { shards: [], over: true };
        return { shards: [], over: false };
      });
      if (answer.over) over.abort();
      return answer.shards;
    },
    async heartbeat(claim, progress) {
      // Unreachable is not lost: the server decides at its heartbeat timeout.
      return client.request<{ alive: boolean }>('POST', '/api/agent/shards/heartbeat', { claim, progress }).then((a) => a.alive, () => true);
    },
    async finish(claim, outcome: ShardOutcome) {
      await client.request('POST', '/api/agent/shards/finish', { claim, outcome });
    },
  };
}

export class FleetWorkers {
  private readonly options: FleetWorkerOptions;
  private readonly runs = new Map<string, { stop: AbortController; done: Promise<void> }>();

  constructor(options: FleetWorkerOptions) {
    this.options = options;
  }

  /** Works on the run's shards until it is over (a second call for the same run changes nothing). */
  join(run: string, destinations: readonly DestinationRef[]): void {
    if (this.runs.has(run)) return;
    const stop = new AbortController();
    const { options } = this;
    const openRepo = async (): Promise<Repository> => {
      const stores = destinations.map((d) => options.openDestination(d, stop.signal));
      return Repository.open(stores, await options.passphrase()).catch(async (err) => {
        await Promise.all(stores.map((s) => s.close()));
        throw err;
      });
    };
    options.log(`scaled-out run ${run}: working on its shards`);
    const done = runShardWorker(serverSource(options.client, run, stop), openRepo, {
      capacity: options.capacity,
      heartbeatMs: options.heartbeatMs(),
      idleMs: 1000,
      signal: stop.signal,
      onStart: (item) => options.log(`scaled-out run ${run}: shard ${item.index + 1}${item.attempt > 1 ? ` (attempt ${item.attempt})` : ''}`),
      run: options.spoolDir ? { spoolDir: options.spoolDir } : {},
    })
      .catch((err) => options.log(`scaled-out run ${run}: ${options.describeError(err)}`))
      .finally(() => {
        this.runs.delete(run);
        options.log(`scaled-out run ${run}: done here`);
      });
    this.runs.set(run, { stop, done });
  }

  /** Stops every shard (the agent is stopping): the server hands them to other workers after the heartbeat timeout. */
  async stopAll(): Promise<void> {
    const runs = [...this.runs.values()];
    for (const r of runs) r.stop.abort();
    await Promise.all(runs.map((r) => r.done));
  }
}
