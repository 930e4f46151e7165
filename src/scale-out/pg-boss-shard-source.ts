// A worker's way to the shard queue on PostgreSQL: pg-boss. Claims are fetches (SKIP LOCKED: each shard
// goes to one worker); heartbeats and results name the attempt they belong to, so once the coordinator
// has failed a silent attempt (and pg-boss handed the shard to another worker), the old worker's
// heartbeat and result touch nothing and it stops.
import type { PgBoss } from 'pg-boss';
import type { ShardOutcome } from '../engine/scale-out/scale-out.ts';
import type { ShardJson } from '../engine/scale-out/shard-plan.ts';
import type { ClaimedShard, ShardProgress, ShardSource } from './shard-worker.ts';

/** The one pg-boss queue of every scaled-out backup's shards; a job's data names its run. */
export const SHARD_QUEUE = 'scale-out.shards';

export interface ShardJobData {
  readonly run: string;
  readonly index: number;
  readonly shard: ShardJson;
  readonly parent?: string;
}

export function attemptOf(claim: string): { id: string; retryCount: number } {
  const [id, retry] = claim.split('/');
  return { id: id!, retryCount: Number(retry) };
}

function affected(response: unknown): number {
  return (response as { affected?: number }).affected ?? 0;
}

export class PgBossShardSource implements ShardSource {
  private readonly boss: PgBoss;
  private readonly queue: string;

  constructor(boss: PgBoss, queue: string = SHARD_QUEUE) {
    this.boss = boss;
    this.queue = queue;
  }

  async claim(capacity: number): Promise<ClaimedShard[]> {
    // Before the first run the queue does not exist yet: nothing to claim.
    const jobs = await this.boss.fetch<ShardJobData>(this.queue, { batchSize: capacity }).catch(() => []);
    return jobs.map((j) => ({
      claim: `${j.id}/${j.retryCount}`,
      run: j.data.run,
      index: j.data.index,
      shard: j.data.shard,
      attempt: j.retryCount + 1,
      ...(j.data.parent ? { parent: j.data.parent } : {}),
    }));
  }

  async heartbeat(claim: string, progress: ShardProgress): Promise<boolean> {
    void progress;
    return affected(await this.boss.touch(this.queue, [attemptOf(claim)])) === 1;
  }

  /** True when the result was taken (the attempt was still the shard's live one). */
  async finish(claim: string, outcome: ShardOutcome): Promise<boolean> {
    const response = outcome.ok ? await this.boss.complete(this.queue, [attemptOf(claim)], outcome) : await this.boss.fail(this.queue, [attemptOf(claim)], { error: outcome.error });
    return affected(response) === 1;
  }
}
