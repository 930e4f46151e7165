// A worker of scaled-out backups: claims shards from the coordinator's queue by capacity, backs each up
// into the shared repository (scale-out engine, no snapshot), heartbeats with its progress while it
// works, and reports the shard's tree or error. A heartbeat the queue refuses (the claim timed out and
// went to another worker) stops the shard at once. How the queue is reached (the in-process queue over a
// forked worker's IPC channel, pg-boss) is the ShardSource's business.
import { decodeShard } from '../engine/scale-out/shard-plan.ts';
import { outcomeOf, shardRun, type ShardOutcome, type ShardRunOptions } from '../engine/scale-out/scale-out.ts';
import type { Repository } from '../repo/repository.ts';
import type { ShardJson } from '../engine/scale-out/shard-plan.ts';
import type { PauseGate } from '../engine/pause-gate.ts';
import { ChunkPools } from '../engine/backup/chunk-pools.ts';

/** A claimed shard as a worker gets it. */
export interface ClaimedShard {
  /** The claim's id: heartbeats and the result name it; a claim taken over by another worker is dead. */
  readonly claim: string;
  readonly run: string;
  readonly index: number;
  readonly shard: ShardJson;
  /** Id of the snapshot the shards compare against, if any. */
  readonly parent?: string;
  readonly attempt: number;
}

export interface ShardProgress {
  readonly filesDone: number;
  readonly bytesDone: number;
}

/** A shard in hand as the worker's own observer sees it: the heartbeat's progress, and what is stored. */
export interface ShardWork extends ShardProgress {
  /** Objects (packs, index files) of this shard's run that every destination holds. */
  readonly objectsStored: number;
}

export interface ShardSource {
  claim(capacity: number): Promise<ClaimedShard[]>;
  /** False when the claim is lost. */
  heartbeat(claim: string, progress: ShardProgress): Promise<boolean>;
  /** A source that knows says whether the result was taken (the attempt was still live); the worker needs no answer. */
  finish(claim: string, outcome: ShardOutcome): Promise<boolean | void>;
}

export interface ShardWorkerOptions {
  /** Shards this worker runs at once (default 1). */
  readonly capacity?: number;
  readonly heartbeatMs?: number;
  /** How long to wait before asking again when the queue had nothing. */
  readonly idleMs?: number;
  readonly signal?: AbortSignal;
  /** While closed, no shard is claimed and the running ones pause between files and packs (heartbeats go on). */
  readonly pause?: PauseGate;
  readonly run?: ShardRunOptions;
  /** Called as each shard starts (tests kill a worker mid-shard). */
  readonly onStart?: (claimed: ClaimedShard) => void;
  /** Called with each heartbeat's progress (a local worker's coordinator follows it over IPC). */
  readonly onProgress?: (claimed: ClaimedShard, work: ShardWork) => void;
  /** Stop once the queue has nothing for this long (default: never). */
  readonly exitWhenIdleMs?: number;
}

/** Runs until the signal aborts (or the queue stays empty for `exitWhenIdleMs`). */
export async function runShardWorker(source: ShardSource, openRepo: () => Promise<Repository>, given: ShardWorkerOptions = {}): Promise<void> {
  // One set of chunk worker threads for the shards run one after another, not one per shard.
  const pools = given.run?.chunkPools ? undefined : new ChunkPools();
  const options = pools ? { ...given, run: { ...given.run, chunkPools: pools } } : given;
  try {
    await claimAndRun(source, openRepo, options);
  } finally {
    await pools?.close();
  }
}

async function claimAndRun(source: ShardSource, openRepo: () => Promise<Repository>, options: ShardWorkerOptions): Promise<void> {
  const capacity = options.capacity ?? 1;
  const running = new Set<Promise<void>>();
  let idleSince = Date.now();
  while (!options.signal?.aborted) {
    // A paused worker claims nothing; the shards it holds pause between files and packs.
    if (options.pause?.paused) {
      await Promise.race([options.pause.wait(options.signal), ...running]);
      idleSince = Date.now();
      continue;
    }
    const free = capacity - running.size;
    const claimed = free > 0 ? await source.claim(free) : [];
    for (const item of claimed) {
      const work = runOne(source, openRepo, item, options).finally(() => running.delete(work));
      running.add(work);
    }
    if (running.size > 0) idleSince = Date.now();
    else if (options.exitWhenIdleMs !== undefined && Date.now() - idleSince >= options.exitWhenIdleMs) break;
    if (claimed.length === 0 || running.size >= capacity) await Promise.race([new Promise((resolve) => setTimeout(resolve, options.idleMs ?? 500)), ...running]);
  }
  await Promise.allSettled(running);
}

async function runOne(source: ShardSource, openRepo: () => Promise<Repository>, item: ClaimedShard, options: ShardWorkerOptions): Promise<void> {
  const lost = new AbortController();
  const stop = (): void => lost.abort();
  options.signal?.addEventListener('abort', stop, { once: true });
  let outcome: ShardOutcome;
  let beat: NodeJS.Timeout | undefined;
  try {
    const shard = decodeShard(item.shard);
    const repo = await openRepo();
    try {
      const parent = item.parent ? (await repo.listSnapshots()).find((s) => s.id === item.parent) : undefined;
      const run = shardRun(repo, shard, parent, { ...options.run, signal: lost.signal, ...(options.pause ? { pause: options.pause } : {}) });
      beat = setInterval(() => {
        const p = run.progress();
        const progress = { filesDone: p.filesDone, bytesDone: p.bytesDone };
        options.onProgress?.(item, { ...progress, objectsStored: Math.min(...p.destinations.map((d) => d.objectsDone)) });
        source.heartbeat(item.claim, progress).then(
          (alive) => alive || lost.abort(),
          () => {},
        );
      }, options.heartbeatMs ?? 5000);
      options.onStart?.(item);
      outcome = outcomeOf(await run.runShard());
    } finally {
      clearInterval(beat);
      await repo.close();
    }
  } catch (err) {
    outcome = { ok: false, error: (err as Error).message };
  } finally {
    options.signal?.removeEventListener('abort', stop);
  }
  // A claim lost meanwhile is another worker's now: its result would be refused anyway.
  if (!lost.signal.aborted) await source.finish(item.claim, outcome).catch(() => {});
}
