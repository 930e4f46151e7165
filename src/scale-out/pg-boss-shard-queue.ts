// The shard queue on PostgreSQL: pg-boss holds one job per shard, which workers on any machine fetch
// (scale-out/pg-boss-shard-source.ts). The coordinator watches its run's jobs: an active job whose worker has
// not touched it for the heartbeat timeout is failed, and pg-boss hands it to the next worker (its
// retries are the shard's attempts); once every job has completed or failed for good the outcomes are
// read from the jobs' output. The server's fleet runs (server/scale-out/pg-fleet-shards.ts) do the same
// check from whichever server process is asked, with a queue per run.
import crypto from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import { SHARD_QUEUE, type ShardJobData } from './pg-boss-shard-source.ts';
import type { ShardOutcome } from '../engine/scale-out/scale-out.ts';
import type { ShardJson } from '../engine/scale-out/shard-plan.ts';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS, DEFAULT_MAX_ATTEMPTS, type EnqueuedRun, type ShardQueue, type ShardQueueOptions, type ShardRunStatus } from './shard-queue.ts';

export class PgBossShardQueue implements ShardQueue {
  private readonly boss: PgBoss;
  private readonly timeout: number;
  private readonly maxAttempts: number;
  private readonly pollMs: number;
  /** The pg-boss queue of the shards: one for all of a deployment's local workers, or one per run (the server's fleet runs, whose workers may claim only their owner's shards). */
  readonly queue: string;
  private stopped = false;

  constructor(boss: PgBoss, options: ShardQueueOptions & { readonly pollMs?: number; readonly queue?: string } = {}) {
    this.boss = boss;
    this.queue = options.queue ?? SHARD_QUEUE;
    this.timeout = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.pollMs = options.pollMs ?? Math.max(200, Math.min(5000, this.timeout / 4));
  }

  async enqueue(shards: readonly ShardJson[], parent?: string): Promise<EnqueuedRun> {
    const run = crypto.randomUUID();
    await this.send(run, shards, parent);
    const outcomes = this.watch(run, shards.length);
    outcomes.catch(() => {});
    return { run, outcomes };
  }

  /** Queues the shards without watching them: whoever asks later checks the run (check). */
  async send(run: string, shards: readonly ShardJson[], parent?: string): Promise<void> {
    if (!(await this.boss.getQueue(this.queue))) await this.boss.createQueue(this.queue, { retryLimit: this.maxAttempts - 1, retryDelay: 0, expireInSeconds: 24 * 3600 });
    for (const [index, shard] of shards.entries()) {
      const data: ShardJobData = { run, index, shard, ...(parent ? { parent } : {}) };
      await this.boss.send(this.queue, data as unknown as object, { retryLimit: this.maxAttempts - 1, retryDelay: 0 });
    }
  }

  /** Each shard's current attempt (its pg-boss job and retry count), and whether the shard is over: a claim of an older attempt, or of an over shard, is dead. */
  async attempts(run: string): Promise<{ readonly job: string; readonly retryCount: number; readonly over: boolean }[]> {
    return (await this.jobs(run)).map((j) => ({ job: j.id, retryCount: j.retryCount, over: j.state === 'completed' || j.state === 'failed' || j.state === 'cancelled' }));
  }

  private async jobs(run: string) {
    return this.boss.findJobs<ShardJobData>(this.queue, { data: { run }, limit: 100_000 });
  }

  /**
   * Fails the run's silent attempts (pg-boss hands each shard to the next worker) and, once every shard
   * is over, returns the outcomes in shard order. Safe to run from several processes at once: a failure
   * names its attempt, so a second one touches nothing.
   */
  async check(run: string, count: number): Promise<ShardOutcome[] | undefined> {
    const jobs = await this.jobs(run);
    const now = Date.now();
    for (const job of jobs) {
      if (job.state !== 'active') continue;
      const last = (job.heartbeatOn ?? job.startedOn).getTime();
      if (now - last <= this.timeout) continue;
      const error = `a worker stopped heartbeating (silent for ${Math.round((now - last) / 1000)} s)`;
      await this.boss.fail(this.queue, [{ id: job.id, retryCount: job.retryCount }], { error });
    }
    const final = jobs.filter((j) => j.state === 'completed' || j.state === 'failed' || j.state === 'cancelled');
    if (jobs.length !== count || final.length !== count) return undefined;
    return [...final]
      .sort((a, b) => a.data.index - b.data.index)
      .map((j): ShardOutcome => {
        if (j.state === 'completed') return j.output as ShardOutcome;
        const error = (j.output as { error?: unknown } | null)?.error;
        return { ok: false, error: `failed ${j.retryCount + 1} times; last: ${typeof error === 'string' ? error : j.state}` };
      });
  }

  private async watch(run: string, count: number): Promise<ShardOutcome[]> {
    for (;;) {
      if (this.stopped) throw new Error('the shard queue was stopped');
      const outcomes = await this.check(run, count);
      if (outcomes) return outcomes;
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  async status(run: string): Promise<ShardRunStatus> {
    const jobs = await this.jobs(run);
    const now = Date.now();
    return {
      waiting: jobs.filter((j) => j.state === 'created' || j.state === 'retry').map((j) => ({ index: j.data.index, files: j.data.shard.files, bytes: j.data.shard.bytes, attempt: j.retryCount })),
      running: jobs
        .filter((j) => j.state === 'active')
        .map((j) => ({
          index: j.data.index,
          claim: `${j.id}/${j.retryCount}`,
          worker: '',
          files: j.data.shard.files,
          bytes: j.data.shard.bytes,
          progress: { filesDone: 0, bytesDone: 0 },
          attempt: j.retryCount + 1,
          silentMs: now - (j.heartbeatOn ?? j.startedOn).getTime(),
        })),
      done: jobs.filter((j) => j.state === 'completed').length,
      failed: jobs.filter((j) => j.state === 'failed').length,
    };
  }

  stop(): void {
    this.stopped = true;
  }
}
