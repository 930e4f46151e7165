// Scaled-out runs of fleet plans on the embedded server. The plan's agent coordinates (only agents hold
// the repository passphrase, and both the split by the previous snapshot and the merge read or write
// the repository): it plans the shards and hands them to the server, which queues them on its job
// engine's shard queue (the in-process MemoryShardQueue, one per run) for the plan's workers: the
// owner's agents with the plan's label, or N of the owner's online agents. Workers claim by capacity,
// heartbeat and report through the agent API (fleet-routes.ts); the queue alone decides what a silent
// worker loses and how often a shard is tried. The coordinator collects the outcomes and merges.
//
// Runs live in this process with their queue: a server that restarts loses them, and the coordinator's
// next look at its run fails the job, whose retry plans again and resumes from what is stored.
import type { DestinationRef, FleetShardStatus, ScaleOutParams } from '../../agent/protocol.ts';
import type { ClaimedShard, ShardProgress } from '../../scale-out/shard-worker.ts';
import type { ShardOutcome } from '../../engine/scale-out/scale-out.ts';
import type { ShardJson } from '../../engine/scale-out/shard-plan.ts';
import { agentLabels } from '../agents/agents.ts';
import type { ServerContext } from '../context.ts';
import type { Agent } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { MemoryShardQueue } from '../../scale-out/shard-queue.ts';

/** An eligible worker that has not asked for shards for this long is told again (a lost message, a restart). */
const RENUDGE_MS = 5000;
/** The dashboard hears of a run's changes at most this often. */
const ANNOUNCE_MS = 500;

interface FleetRun {
  readonly id: string;
  readonly userId: string;
  readonly jobId: string;
  readonly coordinator: string;
  /** The agents that may claim, with their host names (for the dashboard). */
  readonly workers: ReadonlyMap<string, string>;
  readonly destinations: readonly DestinationRef[];
  readonly queue: MemoryShardQueue;
  readonly sizes: readonly { readonly files: number; readonly bytes: number }[];
  /** Every shard's outcome, once none is left to run. */
  outcomes?: ShardOutcome[];
  /** When each worker last asked for shards. */
  readonly seen: Map<string, number>;
  announcing?: NodeJS.Timeout;
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

function sizeOf(shard: ShardJson): { files: number; bytes: number } {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return { files: n(shard.files), bytes: n(shard.bytes) };
}

/** A shard's outcome as a worker reported it, kept to the fields the merge reads (it checks the tree id itself). */
function checkedOutcome(outcome: unknown): ShardOutcome {
  const o = outcome as Partial<Extract<ShardOutcome, { ok: true }>> & { ok?: unknown; error?: unknown };
  if (o?.ok === true && typeof o.tree === 'string' && typeof o.summary === 'object' && o.summary !== null) {
    return { ok: true, tree: o.tree, summary: o.summary, ...(typeof o.adoptedPacks === 'number' ? { adoptedPacks: o.adoptedPacks } : {}), ...(Array.isArray(o.warnings) ? { warnings: o.warnings } : {}) };
  }
  return { ok: false, error: typeof o?.error === 'string' ? o.error.slice(0, 2000) : 'the worker reported no result' };
}

export class FleetShards {
  private readonly ctx: ServerContext;
  private readonly runs = new Map<string, FleetRun>();
  private readonly claims = new Map<string, ClaimRef>();

  constructor(ctx: ServerContext) {
    this.ctx = ctx;
  }

  private get timeoutMs(): number {
    return this.ctx.settings.heartbeatTimeoutSeconds * 1000;
  }

  /** Queues a coordinator's shards for its running scaled-out job; tells the workers. */
  async enqueue(coordinator: Agent, jobId: string, shards: readonly ShardJson[], parent: string | undefined): Promise<string> {
    const job = await this.ctx.db.selectFrom('jobs').selectAll().where('id', '=', jobId).where('agent_id', '=', coordinator.id).where('user_id', '=', coordinator.user_id).executeTakeFirst();
    if (!job) throw new HttpError(404, 'job not found');
    if (job.status !== 'running') throw new HttpError(409, `job ${jobId} is ${job.status}, not running`);
    const params = JSON.parse(job.params) as { scaleOut?: ScaleOutParams; destinations?: DestinationRef[] };
    if (job.kind !== 'backup' || !params.scaleOut) throw new HttpError(409, `job ${jobId} is not a scaled-out backup`);
    const workers = await workersOf(this.ctx, coordinator, params.scaleOut);
    if (workers.length === 0) throw new HttpError(409, `no agent of yours has the label ${params.scaleOut.label}: give the plan's workers that label (coffer agent --label, or the agent's page)`);
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
      destinations: params.destinations ?? [],
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
    await this.ctx.events.append({ agentId, type: 'agent.message', data: { type: 'shards', run: run.id, destinations: run.destinations } });
  }

  private runOf(id: string, agent: Agent): FleetRun {
    const run = this.runs.get(id);
    if (!run || run.userId !== agent.user_id) throw new HttpError(404, 'scaled-out run not found');
    return run;
  }

  /** What the coordinator polls: the status, and every outcome once the run is over. */
  progress(agent: Agent, id: string): { status: FleetShardStatus; outcomes?: ShardOutcome[] } {
    const run = this.runOf(id, agent);
    if (run.coordinator !== agent.id) throw new HttpError(404, 'scaled-out run not found');
    // Kept until the job ends (sweep): an answer lost on its way is asked for again.
    return { status: this.status(run), ...(run.outcomes ? { outcomes: run.outcomes } : {}) };
  }

  /**
   * Up to `capacity` shards of the run for a worker, within what the agent has room for: its capacity
   * less the shards it holds and the ordinary jobs it runs or holds paused. `over`: the run is gone; stop asking.
   */
  async claim(agent: Agent, id: string, capacity: number): Promise<{ shards: ClaimedShard[]; over: boolean }> {
    const run = this.runs.get(id);
    if (!run || run.userId !== agent.user_id || run.outcomes) return { shards: [], over: true };
    if (!run.workers.has(agent.id)) throw new HttpError(404, 'scaled-out run not found');
    run.seen.set(agent.id, this.ctx.now());
    const held = this.held(agent.id);
    const coordinating = [...this.runs.values()].filter((r) => r.coordinator === agent.id).length;
    const running = await this.ctx.db.selectFrom('jobs').select((eb) => eb.fn.countAll<number>().as('n')).where('agent_id', '=', agent.id).where('status', 'in', ['running', 'paused']).executeTakeFirstOrThrow();
    // A coordinator mostly waits: its job does not take the slot a shard needs.
    const free = agent.capacity - held - Math.max(0, Number(running.n) - coordinating);
    const shards = run.queue.claim(agent.id, Math.max(0, Math.min(capacity, free)));
    for (const s of shards) this.claims.set(s.claim, { run: run.id, agentId: agent.id });
    if (shards.length > 0) this.announce(run);
    return { shards, over: false };
  }

  /** The shards an agent holds, over every run: they take its job slots. */
  held(agentId: string): number {
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

  /** False when the claim is lost (timed out, taken over, or its run is over): the worker stops the shard. */
  heartbeat(agent: Agent, claim: string, progress: ShardProgress): boolean {
    const run = this.claimOf(agent, claim);
    const alive = run?.queue.heartbeat(claim, { filesDone: Math.max(0, Number(progress?.filesDone) || 0), bytesDone: Math.max(0, Number(progress?.bytesDone) || 0) }) ?? false;
    if (!alive) this.claims.delete(claim);
    else this.announce(run!);
    return alive;
  }

  finish(agent: Agent, claim: string, outcome: unknown): boolean {
    const run = this.claimOf(agent, claim);
    this.claims.delete(claim);
    const taken = run?.queue.finish(claim, checkedOutcome(outcome)) ?? false;
    if (taken) this.announce(run!);
    return taken;
  }

  /** The status of a user's job's run, for the dashboard; undefined when the job has no live run. */
  statusOfJob(userId: string, jobId: string): FleetShardStatus | undefined {
    const run = [...this.runs.values()].find((r) => r.jobId === jobId && r.userId === userId);
    return run ? this.status(run) : undefined;
  }

  private status(run: FleetRun): FleetShardStatus {
    const total = run.sizes.length;
    const filesTotal = run.sizes.reduce((n, s) => n + s.files, 0);
    const bytesTotal = run.sizes.reduce((n, s) => n + s.bytes, 0);
    if (run.outcomes) {
      const done = run.outcomes.filter((o) => o.ok).length;
      return { total, done, failed: total - done, filesTotal, bytesTotal, filesDone: filesTotal, bytesDone: bytesTotal, waiting: [], running: [] };
    }
    const s = run.queue.status(run.id);
    // Shards that are neither waiting nor running are over: all of their estimate counts as read.
    const left = [...s.waiting.map((w) => ({ ...run.sizes[w.index]!, filesDone: 0, bytesDone: 0 })), ...s.running.map((r) => ({ ...run.sizes[r.index]!, ...r.progress }))];
    return {
      total,
      done: s.done,
      failed: s.failed,
      filesTotal,
      bytesTotal,
      filesDone: left.reduce((n, l) => n - l.files + Math.min(l.files, l.filesDone), filesTotal),
      bytesDone: left.reduce((n, l) => n - l.bytes + Math.min(l.bytes, l.bytesDone), bytesTotal),
      waiting: s.waiting.map((w) => ({ ...w, ...run.sizes[w.index]! })),
      running: s.running.map((r) => ({
        index: r.index,
        agentId: r.worker,
        hostname: run.workers.get(r.worker) ?? r.worker,
        ...run.sizes[r.index]!,
        filesDone: r.progress.filesDone,
        bytesDone: r.progress.bytesDone,
        attempt: r.attempt,
        silentMs: r.silentMs,
      })),
    };
  }

  /** Tells the owner's dashboards, at most every ANNOUNCE_MS per run. */
  private announce(run: FleetRun): void {
    if (run.announcing) return;
    run.announcing = setTimeout(() => {
      run.announcing = undefined;
      this.ctx.events.append({ userId: run.userId, type: 'job.shards', data: { jobId: run.jobId, shards: this.status(run) } }).catch((err) => this.ctx.log.warn({ err }, 'shard status event failed'));
    }, ANNOUNCE_MS);
  }

  private drop(run: FleetRun): void {
    clearTimeout(run.announcing);
    run.queue.stop();
    this.runs.delete(run.id);
    for (const [claim, ref] of this.claims) if (ref.run === run.id) this.claims.delete(claim);
  }

  /**
   * The periodic check: runs whose job is no longer running (paused, cancelled, failed, the coordinator
   * gone: a paused job's workers stop too, and its resume plans again from what is stored)
   * are dropped, and workers that have not asked for waiting shards lately are told again.
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
    for (const run of [...this.runs.values()]) {
      clearTimeout(run.announcing);
      this.drop(run);
    }
  }
}
