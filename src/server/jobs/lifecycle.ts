// A job's life on the server: requested (pending) → running → completed, failed, cancelled or
// interrupted, with pause, retries and resume. Every change is a conditional UPDATE (… WHERE status IN
// the statuses that may lead there, per the job state table shared with the daemon), so two server
// processes, or a late message from an agent, can never move a job twice or backwards.
import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { BackupParams, JobAssignment, JobOutcome, JobProgress, LogLine } from '../../agent/protocol.ts';
import type { RetentionReport } from '../../daemon/plan-retention.ts';
import { ErrorClass, nextRetry, TRANSITIONS, type JobStatus, type RetryPolicy } from '../../jobs/index.ts';
import { raiseAlert, resolveAlerts } from '../alerts/alerts.ts';
import type { ServerContext } from '../context.ts';
import { isUniqueViolation } from '../db/errors.ts';
import type { Job } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { agentOwnerPaused } from './pause-state.ts';

/** The statuses a job may be in to move to `to` (from the shared transition table). */
function sourcesOf(to: JobStatus): JobStatus[] {
  return (Object.keys(TRANSITIONS) as JobStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

export function apiJob(job: Job) {
  return {
    id: job.id,
    kind: job.kind,
    status: job.status,
    planId: job.plan_id,
    agentId: job.agent_id,
    trigger: job.trigger,
    params: JSON.parse(job.params) as unknown,
    requestedAt: job.requested_at,
    startedAt: job.started_at,
    finishedAt: job.finished_at,
    updatedAt: job.updated_at,
    durationMs: job.started_at !== null && job.finished_at !== null ? job.finished_at - job.started_at : null,
    attempt: job.attempt,
    maxRetries: job.max_retries,
    nextAttemptAt: job.next_attempt_at,
    stage: job.stage,
    bytesTotal: job.bytes_total,
    bytesDone: job.bytes_done,
    filesTotal: job.files_total,
    filesDone: job.files_done,
    bytesAdded: job.bytes_added,
    snapshotId: job.snapshot_id,
    error: job.error,
    /** The plan's retention as the agent applied it (on the destinations it opens itself). */
    retention: job.retention === null ? null : (JSON.parse(job.retention) as RetentionReport),
    /** As the server applied it on its own S3 destinations: 'due' until it has run. */
    serverRetention: job.server_retention === null ? null : job.server_retention === 'due' ? ('due' as const) : (JSON.parse(job.server_retention) as RetentionReport),
  };
}

export class PlanBusyError extends HttpError {
  readonly jobId: string;

  constructor(planName: string, jobId: string) {
    super(409, `plan ${planName} already has an unfinished job (${jobId}); wait for it, or cancel it first`);
    this.jobId = jobId;
  }
}

export interface JobRequest {
  readonly userId: string;
  readonly agentId: string;
  readonly planId: string | null;
  readonly planName?: string;
  readonly kind: 'backup' | 'restore';
  readonly params: JobAssignment['params'];
  readonly trigger: string;
  readonly destinationIds: readonly string[];
}

/** Tells the job's owner's dashboards the job as it is now. */
export async function announceJob(ctx: ServerContext, job: Job): Promise<void> {
  await ctx.events.append({ userId: job.user_id, type: 'job.updated', data: apiJob(job) });
}

/** A nudge to whichever server holds the agent's connection: work is waiting in its queue. */
async function nudgeAgent(ctx: ServerContext, agentId: string): Promise<void> {
  await ctx.events.append({ agentId, type: 'agent.dispatch', data: {} });
}

/** Records a job and queues it for its agent. A plan with an unfinished job gets PlanBusyError (one run per plan). */
export async function requestJob(ctx: ServerContext, req: JobRequest, retryPolicy: RetryPolicy): Promise<Job> {
  const now = ctx.now();
  const job: Job = {
    id: crypto.randomUUID(),
    user_id: req.userId,
    plan_id: req.planId,
    agent_id: req.agentId,
    kind: req.kind,
    status: 'pending',
    trigger: req.trigger,
    params: JSON.stringify(req.params),
    requested_at: now,
    started_at: null,
    finished_at: null,
    updated_at: now,
    attempt: 1,
    max_retries: req.kind === 'backup' ? retryPolicy.maxRetries : 0,
    next_attempt_at: null,
    stage: null,
    bytes_total: 0,
    bytes_done: 0,
    files_total: 0,
    files_done: 0,
    bytes_added: 0,
    snapshot_id: null,
    error: null,
    progress: null,
    retention: null,
    server_retention: null,
  };
  try {
    await ctx.db.transaction().execute(async (trx) => {
      await trx.insertInto('jobs').values(job).execute();
      if (req.destinationIds.length > 0) {
        await trx
          .insertInto('job_destinations')
          .values(req.destinationIds.map((d) => ({ job_id: job.id, destination_id: d, status: 'pending' as const, bytes_done: 0, speed: 0, error: null, finished_at: null })))
          .execute();
      }
    });
  } catch (err) {
    if (req.planId && isUniqueViolation(err)) {
      const live = await ctx.db.selectFrom('jobs').select('id').where('plan_id', '=', req.planId).where('status', 'in', ['pending', 'running', 'paused', 'interrupted']).executeTakeFirst();
      throw new PlanBusyError(req.planName ?? req.planId, live?.id ?? '?');
    }
    throw err;
  }
  await ctx.queue.send(req.agentId, job.id);
  await announceJob(ctx, job);
  await nudgeAgent(ctx, req.agentId);
  return job;
}

/** Hands the agent up to `free` of its due jobs; each job is claimed by one server only. */
export async function claimJobs(ctx: ServerContext, agentId: string, free: number): Promise<JobAssignment[]> {
  // Under its owner's global pause the agent gets nothing; the queue keeps the jobs for later.
  if (free <= 0 || (await agentOwnerPaused(ctx, agentId))) return [];
  const items = await ctx.queue.fetch(agentId, free);
  const assignments: JobAssignment[] = [];
  for (const item of items) {
    const now = ctx.now();
    const job = await ctx.db
      .updateTable('jobs')
      .set({ status: 'running', started_at: sql`coalesce(started_at, ${now})`, updated_at: now, next_attempt_at: null, stage: 'starting' })
      .where('id', '=', item.jobId)
      .where('agent_id', '=', agentId)
      .where('status', 'in', sourcesOf('running').filter((s) => s !== 'paused' && s !== 'interrupted'))
      .returningAll()
      .executeTakeFirst();
    // A job cancelled while it waited, or claimed already: its queue item is simply dropped.
    if (job) {
      await ctx.db.insertInto('job_logs').values({ job_id: job.id, at: now, level: 'info', message: job.attempt > 1 ? `attempt ${job.attempt} started` : 'started' }).execute();
      assignments.push({ id: job.id, kind: job.kind, attempt: job.attempt, params: JSON.parse(job.params) } as JobAssignment);
      await announceJob(ctx, job);
    }
  }
  await ctx.queue.complete(agentId, items.map((i) => i.id));
  return assignments;
}

async function jobOfAgent(ctx: ServerContext, agentId: string, jobId: string): Promise<Job | undefined> {
  return ctx.db.selectFrom('jobs').selectAll().where('id', '=', jobId).where('agent_id', '=', agentId).executeTakeFirst();
}

/** A progress report from the agent running the job; ignored once the job is no longer live. */
export async function recordProgress(ctx: ServerContext, agentId: string, jobId: string, progress: JobProgress): Promise<void> {
  const job = await ctx.db
    .updateTable('jobs')
    .set({
      stage: progress.stage,
      bytes_total: Math.round(progress.bytesTotal),
      bytes_done: Math.round(progress.bytesDone),
      files_total: progress.filesTotal,
      files_done: progress.filesDone,
      progress: JSON.stringify(progress),
      updated_at: ctx.now(),
    })
    .where('id', '=', jobId)
    .where('agent_id', '=', agentId)
    .where('status', 'in', ['running', 'paused'])
    .returning(['user_id'])
    .executeTakeFirst();
  if (job) await ctx.events.append({ userId: job.user_id, type: 'job.progress', data: { jobId, progress } });
}

const MAX_LOG_LINE = 4000;

export async function appendLog(ctx: ServerContext, agentId: string, jobId: string, lines: readonly LogLine[]): Promise<void> {
  const job = await jobOfAgent(ctx, agentId, jobId);
  if (!job || lines.length === 0) return;
  const rows = lines.map((l) => ({ job_id: jobId, at: Number(l.at) || ctx.now(), level: ['info', 'warn', 'error'].includes(l.level) ? l.level : 'info', message: String(l.message).slice(0, MAX_LOG_LINE) }));
  await ctx.db.insertInto('job_logs').values(rows).execute();
  await ctx.events.append({ userId: job.user_id, type: 'job.log', data: { jobId, lines: rows.map(({ at, level, message }) => ({ at, level, message })) } });
}

async function move(ctx: ServerContext, where: { jobId: string; agentId?: string; userId?: string }, to: JobStatus, set: Record<string, unknown> = {}): Promise<Job | undefined> {
  const now = ctx.now();
  let query = ctx.db
    .updateTable('jobs')
    .set({ status: to, updated_at: now, ...(to === 'completed' || to === 'failed' || to === 'cancelled' ? { finished_at: now } : {}), ...set })
    .where('id', '=', where.jobId)
    .where('status', 'in', sourcesOf(to));
  if (where.agentId) query = query.where('agent_id', '=', where.agentId);
  if (where.userId) query = query.where('user_id', '=', where.userId);
  const job = await query.returningAll().executeTakeFirst();
  if (job) {
    await ctx.db.insertInto('job_logs').values({ job_id: job.id, at: now, level: to === 'failed' ? 'error' : 'info', message: `${to}${job.error && (to === 'failed' || to === 'interrupted') ? `: ${job.error}` : ''}` }).execute();
    await announceJob(ctx, job);
  }
  return job;
}

export async function markPaused(ctx: ServerContext, agentId: string, jobId: string): Promise<void> {
  await move(ctx, { jobId, agentId }, 'paused');
}

export async function markResumed(ctx: ServerContext, agentId: string, jobId: string): Promise<void> {
  await move(ctx, { jobId, agentId }, 'running');
}

/** The agent's final word on a run: completed, failed (retried while retries remain), cancelled or interrupted. */
export async function finishJob(ctx: ServerContext, agentId: string, jobId: string, result: JobOutcome, retryPolicy: RetryPolicy): Promise<void> {
  const now = ctx.now();
  if (result.outcome === 'completed') {
    const asked = await ctx.db.selectFrom('jobs').select(['params', 'plan_id']).where('id', '=', jobId).where('agent_id', '=', agentId).executeTakeFirst();
    const byServer = asked?.plan_id != null && retentionByServer(JSON.parse(asked.params) as BackupParams);
    // The agent's retention report, and the server's due, land with the completion: whoever sees the job completed sees them.
    const job = await move(ctx, { jobId, agentId }, 'completed', {
      stage: 'done',
      snapshot_id: result.snapshotId ?? null,
      bytes_added: Math.round(result.bytesAdded),
      files_done: result.filesDone,
      bytes_done: Math.round(result.bytesDone),
      error: result.destinations.some((d) => !d.committed) ? result.destinations.filter((d) => !d.committed).map((d) => d.error).join('; ') : null,
      retention: result.retention ? JSON.stringify(checkedReport(result.retention)) : null,
      server_retention: byServer ? 'due' : null,
    });
    if (!job) return;
    await recordDestinations(ctx, jobId, result.destinations, now);
    if (!job.plan_id) return;
    await resolveAlerts(ctx, job.user_id, 'job-failed', job.plan_id);
    // The agent's report first: the server's own, which follows, resolves the alert only if both went well.
    if (result.retention) await recordRetention(ctx, job, job.plan_id, checkedReport(result.retention), byServer ? 'agent-then-server' : 'agent');
    if (byServer) await ctx.queue.sendTask(RETENTION_QUEUE, { jobId });
    return;
  }
  if (result.outcome === 'failed') {
    const job = await move(ctx, { jobId, agentId }, 'failed', { error: result.error.slice(0, 2000) });
    if (!job) return;
    if (result.destinations) await recordDestinations(ctx, jobId, result.destinations, now);
    const retry = result.retryable ? nextRetry(job.attempt - 1, result.network ? ErrorClass.network : ErrorClass.other, { ...retryPolicy, maxRetries: job.max_retries }) : undefined;
    if (retry) {
      const due = now + retry.delayMs;
      const again = await move(ctx, { jobId }, 'pending', { attempt: job.attempt + 1, next_attempt_at: due, finished_at: null });
      if (again) await ctx.queue.send(agentId, jobId, due);
      return;
    }
    const subject = job.plan_id ?? job.id;
    await raiseAlert(ctx, job.user_id, 'job-failed', subject, `${job.kind} job ${job.id} failed${job.attempt > 1 ? ` after ${job.attempt} attempts` : ''}: ${result.error}`);
    return;
  }
  if (result.outcome === 'cancelled') {
    await move(ctx, { jobId, agentId }, 'cancelled');
    return;
  }
  await move(ctx, { jobId, agentId }, 'interrupted', { error: result.reason.slice(0, 2000) });
}

/** The server's queue of plan retentions it applies itself (plans/server-retention.ts works it). */
export const RETENTION_QUEUE = 'plan-retention';

/** Whether the server applies the retention of a backup with these parameters (on its S3 destinations). */
function retentionByServer(params: BackupParams): boolean {
  return params.retentionByServer === true && params.retention !== undefined;
}

/** A retention report as an agent sent it, with its fields checked and its error cut to size. */
function checkedReport(report: RetentionReport): RetentionReport {
  const error = typeof report.error === 'string' ? report.error.slice(0, 2000) : undefined;
  const pruned = report.pruned === true;
  return { forgotten: Math.max(0, Math.trunc(Number(report.forgotten)) || 0), pruned, ...(pruned ? { freedBytes: Math.max(0, Number(report.freedBytes) || 0) } : {}), ...(error !== undefined ? { error } : {}) };
}

/**
 * The plan's retention after the run, as the agent applied it on the destinations it opens itself, or
 * as the server applied it on its own S3 destinations: on the job and in its log. A failure (the backup
 * stands) opens an alert until a later run applies it; the agent's success resolves it only where the
 * server has nothing to add ('agent-then-server': the server's report follows, and resolves it if the
 * agent's went well too).
 */
export async function recordRetention(ctx: ServerContext, job: Job, planId: string, report: RetentionReport, by: 'agent' | 'agent-then-server' | 'server'): Promise<void> {
  const { forgotten, error } = report;
  const what = by === 'server' ? "retention on the server's destinations" : 'retention';
  const message = error !== undefined
    ? `${what} failed: ${error}; the snapshot is kept`
    : `${what} forgot ${forgotten} snapshot${forgotten === 1 ? '' : 's'}${report.pruned ? `, prune freed ${report.freedBytes ?? 0} bytes` : ''}`;
  // As a log line of the job's, so a dashboard watching the job's log sees it come in.
  await appendLog(ctx, job.agent_id, job.id, [{ at: ctx.now(), level: error !== undefined ? 'error' : 'info', message }]);
  if (error === undefined) {
    if (by === 'agent-then-server') return;
    const agentFailed = by === 'server' && job.retention !== null && (JSON.parse(job.retention) as RetentionReport).error !== undefined;
    if (!agentFailed) await resolveAlerts(ctx, job.user_id, 'retention-failed', planId);
    return;
  }
  const plan = await ctx.db.selectFrom('plans').select('name').where('id', '=', planId).executeTakeFirst();
  await raiseAlert(ctx, job.user_id, 'retention-failed', planId, `plan ${plan?.name ?? planId}: ${message}`);
}

async function recordDestinations(ctx: ServerContext, jobId: string, results: readonly { destinationId: string; committed: boolean; error?: string }[], now: number): Promise<void> {
  for (const r of results) {
    await ctx.db
      .updateTable('job_destinations')
      .set({ status: r.committed ? 'completed' : 'failed', error: r.error ?? null, finished_at: now })
      .where('job_id', '=', jobId)
      .where('destination_id', '=', r.destinationId)
      .execute();
  }
}

export async function interruptJob(ctx: ServerContext, agentId: string, jobId: string, reason: string): Promise<void> {
  await move(ctx, { jobId, agentId }, 'interrupted', { error: reason });
}

/** The agent went away: its live jobs become interrupted (they resume when it returns). */
export async function interruptAgentJobs(ctx: ServerContext, agentId: string, reason: string): Promise<void> {
  const live = await ctx.db.selectFrom('jobs').select('id').where('agent_id', '=', agentId).where('status', 'in', ['running', 'paused']).execute();
  for (const { id } of live) await interruptJob(ctx, agentId, id, reason);
}

/** The agent is back: its interrupted jobs are queued again and resume where they stopped. */
export async function resumeAgentJobs(ctx: ServerContext, agentId: string): Promise<void> {
  const stopped = await ctx.db.selectFrom('jobs').select('id').where('agent_id', '=', agentId).where('status', '=', 'interrupted').execute();
  for (const { id } of stopped) {
    const job = await move(ctx, { jobId: id, agentId }, 'pending', { trigger: 'resume' });
    if (job) await ctx.queue.send(agentId, id);
  }
  if (stopped.length > 0) await nudgeAgent(ctx, agentId);
}

/** Pause, resume or cancel from the API. A job that is not running is handled here; a running one by its agent. */
export async function controlJob(ctx: ServerContext, userId: string, jobId: string, action: 'pause' | 'resume' | 'cancel'): Promise<Job> {
  const job = await ctx.db.selectFrom('jobs').selectAll().where('id', '=', jobId).where('user_id', '=', userId).executeTakeFirst();
  if (!job) throw new HttpError(404, 'job not found');
  const tell = async () => ctx.events.append({ agentId: job.agent_id, type: 'agent.message', data: { type: 'control', jobId, action } });
  if (action === 'cancel') {
    const cancelled = await move(ctx, { jobId, userId }, 'cancelled');
    if (!cancelled) throw new HttpError(409, `job ${jobId} is ${job.status}: there is nothing to cancel`);
    // A running agent stops its work when told; whatever it reports afterwards no longer moves the job.
    if (job.status === 'running' || job.status === 'paused') await tell();
    return cancelled;
  }
  if (action === 'pause') {
    if (job.status !== 'running') throw new HttpError(409, `job ${jobId} is ${job.status}: only a running job can be paused`);
    await tell();
    return job;
  }
  if (job.status !== 'paused') throw new HttpError(409, `job ${jobId} is ${job.status}: only a paused job can be resumed`);
  await tell();
  return job;
}

/**
 * A job waiting this long with no item in its agent's queue has lost it: a server stopped between writing
 * the job and queueing it, or between claiming the item and starting the job. It is queued again.
 */
export const LOST_DISPATCH_MS = 2 * 60_000;

/**
 * Queues again the waiting jobs whose queue item is lost. Each job is looked at once per LOST_DISPATCH_MS
 * by one server (a conditional update of its time claims the look); a duplicate item would be harmless
 * anyway, as a job is handed out only while it waits. Returns how many were queued again.
 */
export async function redispatchLost(ctx: ServerContext, lostAfterMs = LOST_DISPATCH_MS): Promise<number> {
  const now = ctx.now();
  const before = now - lostAfterMs;
  const waiting = await ctx.db
    .selectFrom('jobs')
    .select(['id', 'agent_id'])
    .where('status', '=', 'pending')
    .where('updated_at', '<', before)
    // A retry waits for its time in the queue: only one whose time has long passed can be lost.
    .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<', before)]))
    .orderBy('updated_at')
    .limit(100)
    .execute();
  const agents = new Set<string>();
  let queued = 0;
  for (const job of waiting) {
    const look = await ctx.db.updateTable('jobs').set({ updated_at: now }).where('id', '=', job.id).where('status', '=', 'pending').where('updated_at', '<', before).executeTakeFirst();
    if (Number(look.numUpdatedRows) === 0 || (await ctx.queue.isQueued(job.agent_id, job.id))) continue;
    await ctx.queue.send(job.agent_id, job.id);
    await ctx.db.insertInto('job_logs').values({ job_id: job.id, at: now, level: 'warn', message: 'queued again: its place in the queue was lost (a server stopped while handing it out)' }).execute();
    agents.add(job.agent_id);
    queued++;
  }
  for (const agentId of agents) await nudgeAgent(ctx, agentId);
  return queued;
}

/** The embedded queue lives in memory: at start-up, every job waiting to run, and every retention the server left due, is queued again. */
export async function requeuePending(ctx: ServerContext): Promise<void> {
  const pending = await ctx.db.selectFrom('jobs').select(['id', 'agent_id', 'next_attempt_at']).where('status', '=', 'pending').execute();
  for (const job of pending) await ctx.queue.send(job.agent_id, job.id, job.next_attempt_at ?? undefined);
  for (const { id } of await ctx.db.selectFrom('jobs').select('id').where('server_retention', '=', 'due').execute()) await ctx.queue.sendTask(RETENTION_QUEUE, { jobId: id });
}
