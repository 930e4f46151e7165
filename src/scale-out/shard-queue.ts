// The queue of a scaled-out backup's shards on the embedded default: in this one process. Workers claim
// shards by capacity (a loaded worker asks for fewer), heartbeat while they work, and report each shard's
// tree or error. A claimed shard whose worker stops heartbeating for `heartbeatTimeoutMs` goes back to
// the queue and another worker takes it over; the engine resumes it from the repository's checkpoints
// (index files written while the first worker ran, and packs adopted), so stored data is not uploaded
// again. A shard that failed `maxAttempts` times fails for good, and with it the snapshot (or, in a plan
// that allows it, the snapshot is marked partial).
import crypto from 'node:crypto';
import type { ShardJson } from '../engine/scale-out/shard-plan.ts';
import type { ShardOutcome } from '../engine/scale-out/scale-out.ts';
import type { ClaimedShard, ShardProgress } from './shard-worker.ts';

export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ATTEMPTS = 3;

export interface ShardQueueOptions {
  /** How long a worker may stay silent before its shard goes to another one (default 30 s). */
  readonly heartbeatTimeoutMs?: number;
  /** Runs of one shard before it fails for good (default 3). */
  readonly maxAttempts?: number;
  readonly now?: () => number;
}

/** Where a run's shards stand: what the dashboard's job view shows. */
export interface ShardRunStatus {
  readonly waiting: readonly { readonly index: number; readonly files: number; readonly bytes: number; readonly attempt: number }[];
  readonly running: readonly { readonly index: number; /** The attempt's claim, as its worker names it. */ readonly claim?: string; readonly worker: string; readonly files: number; readonly bytes: number; readonly progress: ShardProgress; readonly attempt: number; readonly silentMs: number }[];
  readonly done: number;
  readonly failed: number;
}

interface Item {
  readonly run: string;
  readonly index: number;
  readonly shard: ShardJson;
  readonly parent?: string;
  attempt: number;
  claim?: { id: string; worker: string; heartbeat: number; progress: ShardProgress };
  outcome?: ShardOutcome;
  errors: string[];
}

interface Run {
  readonly items: Item[];
  readonly settled: Promise<ShardOutcome[]>;
  readonly settle: (outcomes: ShardOutcome[]) => void;
}

export interface EnqueuedRun {
  readonly run: string;
  /** Every shard's outcome, in shard order, once none is left to run. */
  readonly outcomes: Promise<ShardOutcome[]>;
}

/** What the coordinator needs of a queue: the in-process one below, or pg-boss (pg-boss-shard-queue.ts). */
export interface ShardQueue {
  enqueue(shards: readonly ShardJson[], parent?: string): EnqueuedRun | Promise<EnqueuedRun>;
  status(run: string): ShardRunStatus | Promise<ShardRunStatus>;
  stop(): void;
}

export class MemoryShardQueue implements ShardQueue {
  private readonly runs = new Map<string, Run>();
  private readonly timeout: number;
  private readonly maxAttempts: number;
  private readonly now: () => number;
  private reaper?: NodeJS.Timeout;

  constructor(options: ShardQueueOptions = {}) {
    this.timeout = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.now = options.now ?? Date.now;
  }

  /** Queues a run's shards; resolves with every shard's outcome, in shard order, once none is left to run. */
  enqueue(shards: readonly ShardJson[], parent?: string): EnqueuedRun {
    const run = crypto.randomUUID();
    let settle!: (outcomes: ShardOutcome[]) => void;
    const settled = new Promise<ShardOutcome[]>((resolve) => (settle = resolve));
    const items = shards.map((shard, index): Item => ({ run, index, shard, attempt: 0, errors: [], ...(parent ? { parent } : {}) }));
    this.runs.set(run, { items, settled, settle });
    this.startReaper();
    if (items.length === 0) this.settleIfDone(run);
    return { run, outcomes: settled };
  }

  /** Up to `capacity` waiting shards for `worker`, oldest run first, in shard order. */
  claim(worker: string, capacity: number): ClaimedShard[] {
    this.reap();
    const claimed: ClaimedShard[] = [];
    for (const run of this.runs.values()) {
      for (const item of run.items) {
        if (claimed.length >= capacity) return claimed;
        if (item.outcome || item.claim) continue;
        item.attempt++;
        item.claim = { id: crypto.randomUUID(), worker, heartbeat: this.now(), progress: { filesDone: 0, bytesDone: 0 } };
        claimed.push({ claim: item.claim.id, run: item.run, index: item.index, shard: item.shard, attempt: item.attempt, ...(item.parent ? { parent: item.parent } : {}) });
      }
    }
    return claimed;
  }

  /** Keeps a claim alive; false when the claim was lost (timed out and taken over): the worker must stop. */
  heartbeat(claim: string, progress?: ShardProgress): boolean {
    const item = this.itemOf(claim);
    if (!item?.claim) return false;
    item.claim.heartbeat = this.now();
    if (progress) item.claim.progress = progress;
    return true;
  }

  /** A worker's result. A failure goes back to the queue until the shard has run `maxAttempts` times. */
  finish(claim: string, outcome: ShardOutcome): boolean {
    const item = this.itemOf(claim);
    if (!item?.claim) return false;
    item.claim = undefined;
    if (outcome.ok) item.outcome = outcome;
    else this.failAttempt(item, outcome.error);
    this.settleIfDone(item.run);
    return true;
  }

  status(run: string): ShardRunStatus {
    const items = this.runs.get(run)?.items ?? [];
    const now = this.now();
    return {
      waiting: items.filter((i) => !i.outcome && !i.claim).map((i) => ({ index: i.index, files: i.shard.files, bytes: i.shard.bytes, attempt: i.attempt })),
      running: items.flatMap((i) =>
        i.claim ? [{ index: i.index, worker: i.claim.worker, files: i.shard.files, bytes: i.shard.bytes, progress: i.claim.progress, attempt: i.attempt, silentMs: now - i.claim.heartbeat }] : [],
      ),
      done: items.filter((i) => i.outcome?.ok).length,
      failed: items.filter((i) => i.outcome && !i.outcome.ok).length,
    };
  }

  /** Claims whose worker went silent go back to the queue (or fail, after the last attempt). */
  reap(): void {
    const now = this.now();
    for (const [id, run] of this.runs) {
      for (const item of run.items) {
        if (!item.claim || now - item.claim.heartbeat <= this.timeout) continue;
        const silent = Math.round((now - item.claim.heartbeat) / 1000);
        const worker = item.claim.worker;
        item.claim = undefined;
        this.failAttempt(item, `worker ${worker} stopped heartbeating (silent for ${silent} s)`);
      }
      this.settleIfDone(id);
    }
  }

  stop(): void {
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = undefined;
  }

  private failAttempt(item: Item, error: string): void {
    item.errors.push(error);
    if (item.attempt >= this.maxAttempts) item.outcome = { ok: false, error: `failed ${item.attempt} times; last: ${error}` };
  }

  private itemOf(claim: string): Item | undefined {
    for (const run of this.runs.values()) for (const item of run.items) if (item.claim?.id === claim) return item;
    return undefined;
  }

  private settleIfDone(id: string): void {
    const run = this.runs.get(id);
    if (!run || !run.items.every((i) => i.outcome)) return;
    this.runs.delete(id);
    run.settle(run.items.map((i) => i.outcome!));
    if (this.runs.size === 0) this.stop();
  }

  /** Silent workers are noticed even when no one claims. */
  private startReaper(): void {
    if (this.reaper) return;
    this.reaper = setInterval(() => this.reap(), Math.max(100, Math.min(5000, this.timeout / 4)));
    this.reaper.unref();
  }
}
