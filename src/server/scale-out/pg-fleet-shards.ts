// Scaled-out fleet runs on PostgreSQL: several server processes share the database, and an agent may
// talk to any of them, so a run lives in the database (fleet_runs) and its shards are pg-boss jobs in a
// queue of its own (PgBossShardQueue, PgBossShardSource): a worker can only ever fetch its run's shards,
// and only the owner's agents named in the run may claim. Which agent holds an attempt, and how far it got,
// is a fleet_claims row. Whichever server is asked, the run's silent attempts are failed (pg-boss hands the
// shard to the next worker) when the coordinator polls and in every server's periodic check; a failure
// names its attempt, so two servers failing the same one change nothing more.
import crypto from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import type { DestinationRef, FleetShardStatus } from '../../agent/protocol.ts';
import type { ShardOutcome } from '../../engine/scale-out/scale-out.ts';
import type { ShardJson } from '../../engine/scale-out/shard-plan.ts';
import { PgBossShardQueue } from '../../scale-out/pg-boss-shard-queue.ts';
import { attemptOf, PgBossShardSource } from '../../scale-out/pg-boss-shard-source.ts';
import type { ClaimedShard, ShardProgress } from '../../scale-out/shard-worker.ts';
import type { ServerContext } from '../context.ts';
import type { Agent, FleetRun } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { Announcer, checkedOutcome, checkedProgress, type FleetShardRuns, freeSlots, nudge, RENUDGE_MS, scaledJob, type ShardSize, sizeOf, statusOf } from './fleet-shards.ts';

function queueOf(run: string): string {
  return `scale-out.shards.${run}`;
}

export class PgFleetShards implements FleetShardRuns {
  private readonly ctx: ServerContext;
  private readonly boss: PgBoss;
  private readonly announcer: Announcer;
  /** When each run's workers last asked this server for shards: the ones silent for a while are told again. */
  private readonly seen = new Map<string, number>();

  constructor(ctx: ServerContext, boss: PgBoss) {
    this.ctx = ctx;
    this.boss = boss;
    this.announcer = new Announcer(ctx);
  }

  private queue(run: string): PgBossShardQueue {
    return new PgBossShardQueue(this.boss, { heartbeatTimeoutMs: this.ctx.settings.heartbeatTimeoutSeconds * 1000, queue: queueOf(run) });
  }

  async enqueue(coordinator: Agent, jobId: string, shards: readonly ShardJson[], parent: string | undefined): Promise<string> {
    const { workers, destinations } = await scaledJob(this.ctx, coordinator, jobId);
    // A coordinator that plans again (a retry, a resume) starts over: the old run's claims die with it.
    for (const old of await this.ctx.db.selectFrom('fleet_runs').select('id').where('job_id', '=', jobId).where('ended_at', 'is', null).execute()) await this.end(old.id);
    const id = crypto.randomUUID();
    await this.ctx.db
      .insertInto('fleet_runs')
      .values({
        id,
        job_id: jobId,
        user_id: coordinator.user_id,
        coordinator: coordinator.id,
        workers: JSON.stringify(workers.map((a) => [a.id, a.hostname])),
        destinations: JSON.stringify(destinations),
        sizes: JSON.stringify(shards.map(sizeOf)),
        outcomes: null,
        created_at: this.ctx.now(),
        ended_at: null,
      })
      .execute();
    await this.queue(id).send(id, shards, parent);
    this.ctx.log.info({ job: jobId, run: id, shards: shards.length, workers: workers.length }, 'scaled-out run queued');
    for (const worker of workers) await this.nudge(id, worker.id, destinations);
    const row = await this.live(id);
    if (row) this.announce(row);
    return id;
  }

  private async nudge(run: string, agentId: string, destinations: readonly DestinationRef[]): Promise<void> {
    this.seen.set(`${run}/${agentId}`, this.ctx.now());
    await nudge(this.ctx, agentId, run, destinations);
  }

  /** A run whose job still runs. */
  private live(id: string): Promise<FleetRun | undefined> {
    return this.ctx.db.selectFrom('fleet_runs').selectAll().where('id', '=', id).where('ended_at', 'is', null).executeTakeFirst();
  }

  async progress(agent: Agent, id: string): Promise<{ status: FleetShardStatus; outcomes?: ShardOutcome[] }> {
    const row = await this.live(id);
    if (!row || row.user_id !== agent.user_id || row.coordinator !== agent.id) throw new HttpError(404, 'scaled-out run not found');
    const outcomes = await this.check(row);
    // Kept until the job ends (sweep): an answer lost on its way is asked for again.
    return { status: await this.status(row, outcomes), ...(outcomes ? { outcomes } : {}) };
  }

  /** Fails silent attempts and forgets dead claims; the outcomes once every shard is over (kept on the run). */
  private async check(row: FleetRun): Promise<ShardOutcome[] | undefined> {
    if (row.outcomes) return JSON.parse(row.outcomes) as ShardOutcome[];
    const queue = this.queue(row.id);
    const outcomes = await queue.check(row.id, sizesOf(row).length);
    const attempts = new Map((await queue.attempts(row.id)).map((a) => [a.job, a]));
    const claims = await this.ctx.db.selectFrom('fleet_claims').select('claim').where('run_id', '=', row.id).execute();
    const dead = claims.map((c) => c.claim).filter((claim) => {
      const { id, retryCount } = attemptOf(claim);
      const attempt = attempts.get(id);
      return !attempt || attempt.over || retryCount < attempt.retryCount;
    });
    if (dead.length > 0) await this.ctx.db.deleteFrom('fleet_claims').where('claim', 'in', dead).execute();
    if (outcomes) {
      await this.ctx.db.updateTable('fleet_runs').set({ outcomes: JSON.stringify(outcomes) }).where('id', '=', row.id).where('outcomes', 'is', null).execute();
      this.announce({ ...row, outcomes: JSON.stringify(outcomes) });
    }
    return outcomes;
  }

  async claim(agent: Agent, id: string, capacity: number): Promise<{ shards: ClaimedShard[]; over: boolean }> {
    const row = await this.live(id);
    if (!row || row.user_id !== agent.user_id || row.outcomes) return { shards: [], over: true };
    if (!workersOfRun(row).has(agent.id)) throw new HttpError(404, 'scaled-out run not found');
    this.seen.set(`${id}/${agent.id}`, this.ctx.now());
    const coordinating = await this.ctx.db.selectFrom('fleet_runs').select((eb) => eb.fn.countAll<number>().as('n')).where('coordinator', '=', agent.id).where('ended_at', 'is', null).executeTakeFirstOrThrow();
    const free = await freeSlots(this.ctx, agent, await this.held(agent.id), Number(coordinating.n));
    const take = Math.max(0, Math.min(capacity, free));
    if (take === 0) return { shards: [], over: false };
    const shards = await new PgBossShardSource(this.boss, queueOf(id)).claim(take);
    if (shards.length > 0) {
      await this.ctx.db
        .insertInto('fleet_claims')
        .values(shards.map((s) => ({ claim: s.claim, run_id: id, agent_id: agent.id, files_done: 0, bytes_done: 0 })))
        .execute();
      this.announce(row);
    }
    return { shards, over: false };
  }

  async held(agentId: string): Promise<number> {
    const held = await this.ctx.db
      .selectFrom('fleet_claims')
      .innerJoin('fleet_runs', 'fleet_runs.id', 'fleet_claims.run_id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('fleet_claims.agent_id', '=', agentId)
      .where('fleet_runs.ended_at', 'is', null)
      .where('fleet_runs.outcomes', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(held.n);
  }

  /** The claim's live run, when the claim is this agent's. */
  private async claimOf(agent: Agent, claim: string): Promise<FleetRun | undefined> {
    return this.ctx.db
      .selectFrom('fleet_claims')
      .innerJoin('fleet_runs', 'fleet_runs.id', 'fleet_claims.run_id')
      .selectAll('fleet_runs')
      .where('fleet_claims.claim', '=', claim)
      .where('fleet_claims.agent_id', '=', agent.id)
      .where('fleet_runs.ended_at', 'is', null)
      .executeTakeFirst();
  }

  async heartbeat(agent: Agent, claim: string, progress: ShardProgress): Promise<boolean> {
    const row = await this.claimOf(agent, claim);
    const alive = row ? await new PgBossShardSource(this.boss, queueOf(row.id)).heartbeat(claim, progress) : false;
    if (!alive) {
      await this.ctx.db.deleteFrom('fleet_claims').where('claim', '=', claim).where('agent_id', '=', agent.id).execute();
      return false;
    }
    const { filesDone, bytesDone } = checkedProgress(progress);
    await this.ctx.db.updateTable('fleet_claims').set({ files_done: filesDone, bytes_done: bytesDone }).where('claim', '=', claim).execute();
    this.announce(row!);
    return true;
  }

  async finish(agent: Agent, claim: string, outcome: unknown): Promise<boolean> {
    const row = await this.claimOf(agent, claim);
    if (!row) return false;
    await this.ctx.db.deleteFrom('fleet_claims').where('claim', '=', claim).execute();
    const taken = await new PgBossShardSource(this.boss, queueOf(row.id)).finish(claim, checkedOutcome(outcome));
    if (taken) this.announce(row);
    return taken;
  }

  async statusOfJob(userId: string, jobId: string): Promise<FleetShardStatus | undefined> {
    const row = await this.ctx.db.selectFrom('fleet_runs').selectAll().where('job_id', '=', jobId).where('user_id', '=', userId).where('ended_at', 'is', null).orderBy('created_at', 'desc').executeTakeFirst();
    return row ? this.status(row, row.outcomes ? (JSON.parse(row.outcomes) as ShardOutcome[]) : undefined) : undefined;
  }

  private async status(row: FleetRun, outcomes: readonly ShardOutcome[] | undefined): Promise<FleetShardStatus> {
    if (outcomes) return statusOf(sizesOf(row), workersOfRun(row), undefined, outcomes);
    const s = await this.queue(row.id).status(row.id);
    const claims = new Map((await this.ctx.db.selectFrom('fleet_claims').selectAll().where('run_id', '=', row.id).execute()).map((c) => [c.claim, c]));
    const running = s.running.map((r) => {
      const c = r.claim === undefined ? undefined : claims.get(r.claim);
      return c ? { ...r, worker: c.agent_id, progress: { filesDone: Number(c.files_done), bytesDone: Number(c.bytes_done) } } : r;
    });
    return statusOf(sizesOf(row), workersOfRun(row), { ...s, running }, undefined);
  }

  private announce(row: FleetRun): void {
    this.announcer.announce(row.id, row.user_id, row.job_id, () => this.status(row, row.outcomes ? (JSON.parse(row.outcomes) as ShardOutcome[]) : undefined));
  }

  /** The run is over for good: its shards' queue and claims go (any server may do it; doing it twice changes nothing). */
  private async end(id: string): Promise<void> {
    this.announcer.forget(id);
    await this.ctx.db.updateTable('fleet_runs').set({ ended_at: this.ctx.now() }).where('id', '=', id).where('ended_at', 'is', null).execute();
    await this.ctx.db.deleteFrom('fleet_claims').where('run_id', '=', id).execute();
    await this.boss.deleteQueue(queueOf(id)).catch(() => {});
    for (const key of [...this.seen.keys()]) if (key.startsWith(`${id}/`)) this.seen.delete(key);
  }

  /**
   * Every server's periodic check: runs whose job is no longer running are ended (a paused job's workers
   * stop too; its resume plans again from what is stored), silent attempts fail, and workers that have
   * not asked this server for waiting shards lately are told again (a repeated message changes nothing).
   */
  async sweep(): Promise<void> {
    const now = this.ctx.now();
    const rows = await this.ctx.db.selectFrom('fleet_runs').innerJoin('jobs', 'jobs.id', 'fleet_runs.job_id').selectAll('fleet_runs').select('jobs.status as jobStatus').where('fleet_runs.ended_at', 'is', null).execute();
    for (const { jobStatus, ...row } of rows) {
      if (jobStatus !== 'running') {
        await this.end(row.id);
        continue;
      }
      if (await this.check(row)) continue;
      const waiting = (await this.queue(row.id).status(row.id)).waiting.length;
      if (waiting === 0) continue;
      const destinations = JSON.parse(row.destinations) as DestinationRef[];
      for (const agentId of workersOfRun(row).keys()) if (now - (this.seen.get(`${row.id}/${agentId}`) ?? 0) > RENUDGE_MS) await this.nudge(row.id, agentId, destinations);
    }
  }

  stop(): void {
    this.announcer.stop();
  }
}

function workersOfRun(row: FleetRun): ReadonlyMap<string, string> {
  return new Map(JSON.parse(row.workers) as [string, string][]);
}

function sizesOf(row: FleetRun): ShardSize[] {
  return JSON.parse(row.sizes) as ShardSize[];
}
