// Scaled-out runs of fleet plans on the embedded server. The plan's agent coordinates (only agents hold
// the repository passphrase, and both the split by the previous snapshot and the merge read or write
// the repository): it plans the shards and hands them to the server, which queues them on its job
// engine's shard queue (the in-process MemoryShardQueue, one per run) for the plan's workers: the
// owner's agents with the plan's label, or N of the owner's online agents. Workers claim by capacity,
// heartbeat and report through the agent API (fleet-routes.ts); the queue alone decides what a silent
// worker loses and how often a shard is tried. The coordinator collects the outcomes and merges.
//
// Two implementations, chosen by the deployment like the job queue (server/queue/): on the embedded
// server runs live in this process with their queue (below): a server that restarts loses them, and the
// coordinator's next look at its run fails the job, whose retry plans again and resumes from what is
// stored. On PostgreSQL they live in the database (pg-fleet-shards.ts), so any server answers any run.
import type { DestinationRef, FleetShardStatus, ScaleOutParams } from '../../agent/protocol.ts';
import type { ClaimedShard, ShardProgress } from '../../scale-out/shard-worker.ts';
import type { ShardOutcome } from '../../engine/scale-out/scale-out.ts';
import type { ShardJson } from '../../engine/scale-out/shard-plan.ts';
import { agentLabels } from '../agents/agents.ts';
import type { ServerContext } from '../context.ts';
import type { Agent } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { MemoryShardQueue, type ShardRunStatus } from '../../scale-out/shard-queue.ts';

/** An eligible worker that has not asked for shards for this long is told again (a lost message, a restart). */
export const RENUDGE_MS = 5000;
/** The dashboard hears of a run's changes at most this often. */
const ANNOUNCE_MS = 500;

/** What the agent API and the hub need of a deployment's fleet runs. */
export interface FleetShardRuns {
  /** Queues a coordinator's shards for its running scaled-out job; tells the workers. Returns the run's id. */
  enqueue(coordinator: Agent, jobId: string, shards: readonly ShardJson[], parent: string | undefined): Promise<string>;
  /** What the coordinator polls: the status, and every outcome once the run is over. */
  progress(agent: Agent, id: string): Promise<{ status: FleetShardStatus; outcomes?: ShardOutcome[] }>;
  /** Up to `capacity` shards of the run for a worker, within its free slots. `over`: the run is gone; stop asking. */
  claim(agent: Agent, id: string, capacity: number): Promise<{ shards: ClaimedShard[]; over: boolean }>;
  /** The shards an agent holds, over every run: they take its job slots. */
  held(agentId: string): Promise<number>;
  /** False when the claim is lost (timed out, taken over, or its run is over): the worker stops the shard. */
  heartbeat(agent: Agent, claim: string, progress: ShardProgress): Promise<boolean>;
  finish(agent: Agent, claim: string, outcome: unknown): Promise<boolean>;
  /** The status of a user's job's run, for the dashboard; undefined when the job has no live run. */
  statusOfJob(userId: string, jobId: string): Promise<FleetShardStatus | undefined>;
  /** The periodic check: runs whose job stopped running are dropped, silent shards go to other workers, idle workers are told again. */
  sweep(): Promise<void>;
  stop(): void;
}

/** A shard's estimate, in shard order. */
export type ShardSize = { readonly files: number; readonly bytes: number };

interface FleetRun {
  readonly id: string;
  readonly userId: string;
  readonly jobId: string;
  readonly coordinator: string;
  /** The agents that may claim, with their host names (for the dashboard). */
  readonly workers: ReadonlyMap<string, string>;
  readonly destinations: readonly DestinationRef[];
  readonly queue: MemoryShardQueue;
  readonly sizes: readonly ShardSize[];
  /** Every shard's outcome, once none is left to run. */
  outcomes?: ShardOutcome[];
  /** When each worker last asked for shards. */
  readonly seen: Map<string, number>;
}

/** A claim as the server keeps it: whose it is, so only that agent may heartbeat or finish it. */
interface ClaimRef {
  readonly run: string;
  readonly agentId: string;
}

/** The agents that work on a run: every agent of the owner with the label, or `workers` online ones (the coordinator first). */
export async function workersOf(ctx: ServerContext, coordinator: Agent, scaleOut: ScaleOutParams): Promise<Agent[]> {
  const agents = await ctx.db.selectFrom('agents').selectAll().where('user_id', '=', coordinator.user_id).execute();
  if (scaleOut.label !== undefined) return agents.filter((a) => agentLabels(a).includes(scaleOut.label!));
  const others = agents.filter((a) => a.id !== coordinator.id && a.status === 'online').sort((a, b) => b.capacity - a.capacity || a.hostname.localeCompare(b.hostname));
  return [coordinator, ...others].slice(0, scaleOut.workers);
}

export function sizeOf(shard: ShardJson): { files: number; bytes: number } {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return { files: n(shard.files), bytes: n(shard.bytes) };
}

/** A shard's outcome as a worker reported it, kept to the fields the merge reads (it checks the tree id itself). */
export function checkedOutcome(outcome: unknown): ShardOutcome {
  const o = outcome as Partial<Extract<ShardOutcome, { ok: true }>> & { ok?: unknown; error?: unknown };
  if (o?.ok === true && typeof o.tree === 'string' && typeof o.summary === 'object' && o.summary !== null) {
    return { ok: true, tree: o.tree, summary: o.summary, ...(typeof o.adoptedPacks === 'number' ? { adoptedPacks: o.adoptedPacks } : {}), ...(Array.isArray(o.warnings) ? { warnings: o.warnings } : {}) };
  }
  return { ok: false, error: typeof o?.error === 'string' ? o.error.slice(0, 2000) : 'the worker reported no result' };
}


/** The coordinator's running scaled-out backup job, its parameters and its workers; an HTTP error otherwise. */
export async function scaledJob(ctx: ServerContext, coordinator: Agent, jobId: string): Promise<{ workers: Agent[]; destinations: DestinationRef[] }> {
  const job = await ctx.db.selectFrom('jobs').selectAll().where('id', '=', jobId).where('agent_id', '=', coordinator.id).where('user_id', '=', coordinator.user_id).executeTakeFirst();
  if (!job) throw new HttpError(404, 'job not found');
  if (job.status !== 'running') throw new HttpError(409, `job ${jobId} is ${job.status}, not running`);
  const params = JSON.parse(job.params) as { scaleOut?: ScaleOutParams; destinations?: DestinationRef[] };
  if (job.kind !== 'backup' || !params.scaleOut) throw new HttpError(409, `job ${jobId} is not a scaled-out backup`);
  const workers = await workersOf(ctx, coordinator, params.scaleOut);
  if (workers.length === 0) throw new HttpError(409, `no agent of yours has the label ${params.scaleOut.label}: give the plan's workers that label (coffer agent --label, or the agent's page)`);
  return { workers, destinations: params.destinations ?? [] };
}

/** The slots a worker has for shards: its capacity less the shards it holds and the ordinary jobs it runs or holds paused. */
export async function freeSlots(ctx: ServerContext, agent: Agent, held: number, coordinating: number): Promise<number> {
  const running = await ctx.db.selectFrom('jobs').select((eb) => eb.fn.countAll<number>().as('n')).where('agent_id', '=', agent.id).where('status', 'in', ['running', 'paused']).executeTakeFirstOrThrow();
  // A coordinator mostly waits: its job does not take the slot a shard needs.
  return agent.capacity - held - Math.max(0, Number(running.n) - coordinating);
}

/** Tells the agent there are shards for it: through the event log, so it reaches the agent on whichever server it is connected to. */
export async function nudge(ctx: ServerContext, agentId: string, run: string, destinations: readonly DestinationRef[]): Promise<void> {
  await ctx.events.append({ agentId, type: 'agent.message', data: { type: 'shards', run, destinations } });
}

/** A run's status for the dashboard and the coordinator, from its queue's status or, once over, its outcomes. */
export function statusOf(sizes: readonly ShardSize[], workers: ReadonlyMap<string, string>, s: ShardRunStatus | undefined, outcomes: readonly ShardOutcome[] | undefined): FleetShardStatus {
  const total = sizes.length;
  const filesTotal = sizes.reduce((n, x) => n + x.files, 0);
  const bytesTotal = sizes.reduce((n, x) => n + x.bytes, 0);
  if (outcomes || !s) {
    const done = outcomes?.filter((o) => o.ok).length ?? 0;
    return { total, done, failed: total - done, filesTotal, bytesTotal, filesDone: filesTotal, bytesDone: bytesTotal, waiting: [], running: [] };
  }
  // Shards that are neither waiting nor running are over: all of their estimate counts as read.
  const left = [...s.waiting.map((w) => ({ ...sizes[w.index]!, filesDone: 0, bytesDone: 0 })), ...s.running.map((r) => ({ ...sizes[r.index]!, ...r.progress }))];
  return {
    total,
    done: s.done,
    failed: s.failed,
    filesTotal,
    bytesTotal,
    filesDone: left.reduce((n, l) => n - l.files + Math.min(l.files, l.filesDone), filesTotal),
    bytesDone: left.reduce((n, l) => n - l.bytes + Math.min(l.bytes, l.bytesDone), bytesTotal),
    waiting: s.waiting.map((w) => ({ ...w, ...sizes[w.index]! })),
    running: s.running.map((r) => ({
      index: r.index,
      agentId: r.worker,
      hostname: workers.get(r.worker) ?? r.worker,
      ...sizes[r.index]!,
      filesDone: r.progress.filesDone,
      bytesDone: r.progress.bytesDone,
      attempt: r.attempt,
      silentMs: r.silentMs,
    })),
  };
}

/** Tells the owner's dashboards of a run's changes, at most every ANNOUNCE_MS per run (from this process). */
export class Announcer {
  private readonly ctx: ServerContext;
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(ctx: ServerContext) {
    this.ctx = ctx;
  }

  announce(run: string, userId: string, jobId: string, status: () => FleetShardStatus | Promise<FleetShardStatus>): void {
    if (this.pending.has(run)) return;
    this.pending.set(
      run,
      setTimeout(() => {
        this.pending.delete(run);
        Promise.resolve()
          .then(status)
          .then((shards) => this.ctx.events.append({ userId, type: 'job.shards', data: { jobId, shards } }))
          .catch((err) => this.ctx.log.warn({ err }, 'shard status event failed'));
      }, ANNOUNCE_MS),
    );
  }

  forget(run: string): void {
    clearTimeout(this.pending.get(run));
    this.pending.delete(run);
  }

  stop(): void {
    for (const run of [...this.pending.keys()]) this.forget(run);
  }
}

/** The embedded server's fleet runs: each with its in-process MemoryShardQueue. */
export class MemoryFleetShards implements FleetShardRuns {
  private readonly ctx: ServerContext;
  private readonly runs = new Map<string, FleetRun>();
  private readonly claims = new Map<string, ClaimRef>();
  private readonly announcer: Announcer;

  constructor(ctx: ServerContext) {
    this.ctx = ctx;
    this.announcer = new Announcer(ctx);
  }

  private get timeoutMs(): number {
    return this.ctx.settings.heartbeatTimeoutSeconds * 1000;
  }

  async enqueue(coordinator: Agent, jobId: string, shards: readonly ShardJson[], parent: string | undefined): Promise<string> {
    const { workers, destinations } = await scaledJob(this.ctx, coordinator, jobId);
    // A coordinator that plans again (a retry, a resume) starts over: the old run's claims die with it.
    for (const old of this.runs.values()) if (old.jobId === jobId) this.drop(old);
    const queue = new MemoryShardQueue({ heartbeatTimeoutMs: this.timeoutMs });
    const { run: id, outcomes } = queue.enqueue(shards, parent);
    const run: FleetRun = {
      id,
      userId: coordinator.user_id,
      jobId,
      coordinator: coordinator.id,
      workers: new Map(workers.map((a) => [a.id, a.hostname])),
      destinations,
      queue,
      sizes: shards.map(sizeOf),
      seen: new Map(),
    };
    this.runs.set(id, run);
    void outcomes.then((settled) => {
      run.outcomes = settled;
      this.announce(run);
    });
    this.ctx.log.info({ job: jobId, run: id, shards: shards.length, workers: workers.length }, 'scaled-out run queued');
    for (const worker of workers) await this.nudge(run, worker.id);
    this.announce(run);
    return id;
  }

  private async nudge(run: FleetRun, agentId: string): Promise<void> {
    run.seen.set(agentId, this.ctx.now());
    await nudge(this.ctx, agentId, run.id, run.destinations);
  }

  private runOf(id: string, agent: Agent): FleetRun {
    const run = this.runs.get(id);
    if (!run || run.userId !== agent.user_id) throw new HttpError(404, 'scaled-out run not found');
    return run;
  }

  async progress(agent: Agent, id: string): Promise<{ status: FleetShardStatus; outcomes?: ShardOutcome[] }> {
    const run = this.runOf(id, agent);
    if (run.coordinator !== agent.id) throw new HttpError(404, 'scaled-out run not found');
    // Kept until the job ends (sweep): an answer lost on its way is asked for again.
    return { status: this.status(run), ...(run.outcomes ? { outcomes: run.outcomes } : {}) };
  }

  async claim(agent: Agent, id: string, capacity: number): Promise<{ shards: ClaimedShard[]; over: boolean }> {
    const run = this.runs.get(id);
    if (!run || run.userId !== agent.user_id || run.outcomes) return { shards: [], over: true };
    if (!run.workers.has(agent.id)) throw new HttpError(404, 'scaled-out run not found');
    run.seen.set(agent.id, this.ctx.now());
    const coordinating = [...this.runs.values()].filter((r) => r.coordinator === agent.id).length;
    const free = await freeSlots(this.ctx, agent, this.heldNow(agent.id), coordinating);
    const shards = run.queue.claim(agent.id, Math.max(0, Math.min(capacity, free)));
    for (const s of shards) this.claims.set(s.claim, { run: run.id, agentId: agent.id });
    if (shards.length > 0) this.announce(run);
    return { shards, over: false };
  }

  async held(agentId: string): Promise<number> {
    return this.heldNow(agentId);
  }

  private heldNow(agentId: string): number {
    return [...this.runs.values()].reduce((n, r) => n + this.heldBy(r, agentId), 0);
  }

  private heldBy(run: FleetRun, agentId: string): number {
    return run.outcomes ? 0 : run.queue.status(run.id).running.filter((r) => r.worker === agentId).length;
  }

  private claimOf(agent: Agent, claim: string): FleetRun | undefined {
    const ref = this.claims.get(claim);
    if (!ref || ref.agentId !== agent.id) return undefined;
    return this.runs.get(ref.run);
  }

  async heartbeat(agent: Agent, claim: string, progress: ShardProgress): Promise<boolean> {
    const run = this.claimOf(agent, claim);
    const alive = run?.queue.heartbeat(claim, checkedProgress(progress)) ?? false;
    if (!alive) this.claims.delete(claim);
    else this.announce(run!);
    return alive;
  }

  async finish(agent: Agent, claim: string, outcome: unknown): Promise<boolean> {
    const run = this.claimOf(agent, claim);
    this.claims.delete(claim);
    const taken = run?.queue.finish(claim, checkedOutcome(outcome)) ?? false;
    if (taken) this.announce(run!);
    return taken;
  }

  async statusOfJob(userId: string, jobId: string): Promise<FleetShardStatus | undefined> {
    const run = [...this.runs.values()].find((r) => r.jobId === jobId && r.userId === userId);
    return run ? this.status(run) : undefined;
  }

  private status(run: FleetRun): FleetShardStatus {
    return statusOf(run.sizes, run.workers, run.outcomes ? undefined : run.queue.status(run.id), run.outcomes);
  }

  private announce(run: FleetRun): void {
    this.announcer.announce(run.id, run.userId, run.jobId, () => this.status(run));
  }

  private drop(run: FleetRun): void {
    this.announcer.forget(run.id);
    run.queue.stop();
    this.runs.delete(run.id);
    for (const [claim, ref] of this.claims) if (ref.run === run.id) this.claims.delete(claim);
  }

  /**
   * Runs whose job is no longer running (paused, cancelled, failed, the coordinator gone: a paused job's
   * workers stop too, and its resume plans again from what is stored) are dropped, and workers that have
   * not asked for waiting shards lately are told again.
   */
  async sweep(): Promise<void> {
    const now = this.ctx.now();
    for (const run of [...this.runs.values()]) {
      const job = await this.ctx.db.selectFrom('jobs').select('status').where('id', '=', run.jobId).executeTakeFirst();
      if (job?.status !== 'running') {
        this.drop(run);
        continue;
      }
      run.queue.reap();
      if (run.outcomes || run.queue.status(run.id).waiting.length === 0) continue;
      for (const agentId of run.workers.keys()) if (now - (run.seen.get(agentId) ?? 0) > RENUDGE_MS) await this.nudge(run, agentId);
    }
  }

  stop(): void {
    for (const run of [...this.runs.values()]) this.drop(run);
  }
}

/** A worker's progress report, kept to two non-negative numbers. */
export function checkedProgress(progress: ShardProgress): ShardProgress {
  return { filesDone: Math.max(0, Number(progress?.filesDone) || 0), bytesDone: Math.max(0, Number(progress?.bytesDone) || 0) };
}
