// What the dashboard's overview shows in one request: each machine and whether it is protected, the
// last success of every plan on every destination, data protected, open alerts, active jobs, and a
// series per day of data added and job outcomes (also for the reports page). Everything is the
// signed-in user's own.
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';

const DAY_MS = 24 * 3600_000;
const OVERVIEW_DAYS = 30;
/** The longest series one request may ask for. */
const MAX_DAYS = 400;
const ACTIVE = ['pending', 'running', 'paused', 'interrupted'] as const;
const OUTCOMES = ['completed', 'failed', 'cancelled', 'interrupted'] as const;

export interface DailyPoint {
  /** The local day (by the caller's UTC offset), YYYY-MM-DD. */
  readonly day: string;
  readonly bytesAdded: number;
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly interrupted: number;
}

/**
 * Jobs that ended in [from, to), per local day of `tzOffsetMinutes` (as a browser's getTimezoneOffset:
 * UTC minus local time). Every day of the range is present, with zeros when nothing happened.
 */
export async function dailySeries(ctx: ServerContext, userId: string, from: number, to: number, tzOffsetMinutes: number): Promise<DailyPoint[]> {
  const shift = tzOffsetMinutes * 60_000;
  const ended = sql<number>`coalesce(finished_at, updated_at)`;
  // Local day number: days since 1970-01-01 in the caller's zone; integer division on both databases.
  const dayOf = sql<number>`(coalesce(finished_at, updated_at) - ${shift}) / ${DAY_MS}`;
  const rows = await ctx.db
    .selectFrom('jobs')
    .select([dayOf.as('day'), 'status', sql<number>`sum(bytes_added)`.as('added'), sql<number>`count(*)`.as('n')])
    .where('user_id', '=', userId)
    .where('status', 'in', [...OUTCOMES])
    .where(ended, '>=', from)
    .where(ended, '<', to)
    .groupBy([dayOf, 'status'])
    .execute();
  const first = Math.floor((from - shift) / DAY_MS);
  const last = Math.floor((to - 1 - shift) / DAY_MS);
  const points = new Map<number, { bytesAdded: number; completed: number; failed: number; cancelled: number; interrupted: number }>();
  for (let d = first; d <= last; d++) points.set(d, { bytesAdded: 0, completed: 0, failed: 0, cancelled: 0, interrupted: 0 });
  for (const r of rows) {
    const p = points.get(Math.floor(Number(r.day)));
    if (!p) continue;
    p[r.status as (typeof OUTCOMES)[number]] += Number(r.n);
    if (r.status === 'completed') p.bytesAdded += Number(r.added ?? 0);
  }
  return [...points].map(([d, p]) => ({ day: new Date(d * DAY_MS).toISOString().slice(0, 10), ...p }));
}

interface DestinationRun {
  readonly planId: string;
  readonly destinationId: string;
  readonly status: 'completed' | 'failed';
  readonly at: number;
}

/** The newest completed and the newest failed run of each plan on each destination. */
async function destinationRuns(ctx: ServerContext, userId: string): Promise<DestinationRun[]> {
  const rows = await ctx.db
    .selectFrom('job_destinations as jd')
    .innerJoin('jobs as j', 'j.id', 'jd.job_id')
    .select(['j.plan_id', 'jd.destination_id', 'jd.status', sql<number>`max(jd.finished_at)`.as('at')])
    .where('j.user_id', '=', userId)
    .where('j.kind', '=', 'backup')
    .where('j.plan_id', 'is not', null)
    .where('jd.status', 'in', ['completed', 'failed'])
    .groupBy(['j.plan_id', 'jd.destination_id', 'jd.status'])
    .execute();
  return rows.map((r) => ({ planId: r.plan_id!, destinationId: r.destination_id, status: r.status as 'completed' | 'failed', at: Number(r.at) }));
}

export async function buildOverview(ctx: ServerContext, userId: string, tzOffsetMinutes: number) {
  const now = ctx.now();
  const [agents, plans, destinations, alerts, runs, active] = await Promise.all([
    ctx.db.selectFrom('agents').select(['id', 'hostname', 'status']).where('user_id', '=', userId).orderBy('hostname').execute(),
    ctx.db.selectFrom('plans').selectAll().where('user_id', '=', userId).orderBy('name').execute(),
    ctx.db.selectFrom('destinations').select(['id', 'name']).where('user_id', '=', userId).execute(),
    ctx.db.selectFrom('alerts').select(['kind', 'subject_id', 'message', 'acknowledged_at']).where('user_id', '=', userId).where('resolved_at', 'is', null).execute(),
    destinationRuns(ctx, userId),
    ctx.db.selectFrom('jobs').select(sql<number>`count(*)`.as('n')).where('user_id', '=', userId).where('status', 'in', [...ACTIVE]).executeTakeFirstOrThrow(),
  ]);
  const destinationName = new Map(destinations.map((d) => [d.id, d.name]));
  // Data protected: each plan's newest completed backup.
  const latest = await ctx.db
    .selectFrom('jobs')
    .select(['plan_id', 'bytes_total', 'files_total', 'files_done', 'finished_at', 'snapshot_id'])
    .where('user_id', '=', userId)
    .where('kind', '=', 'backup')
    .where('status', '=', 'completed')
    .where('plan_id', 'in', plans.length ? plans.map((p) => p.id) : [''])
    .where('finished_at', '=', (eb) => eb.selectFrom('jobs as j2').select(sql<number>`max(j2.finished_at)`.as('m')).whereRef('j2.plan_id', '=', 'jobs.plan_id').where('j2.status', '=', 'completed').where('j2.kind', '=', 'backup'))
    .execute();
  const latestOf = new Map(latest.map((j) => [j.plan_id!, j]));
  // The failure of a destination, from its newest failed run.
  const failedRuns = runs.filter((r) => r.status === 'failed');
  const failureErrors = failedRuns.length
    ? await ctx.db
        .selectFrom('job_destinations as jd')
        .innerJoin('jobs as j', 'j.id', 'jd.job_id')
        .select(['j.plan_id', 'jd.destination_id', 'jd.error', 'jd.finished_at'])
        .where('j.user_id', '=', userId)
        .where('jd.status', '=', 'failed')
        .where('jd.finished_at', 'in', failedRuns.map((r) => r.at))
        .execute()
    : [];

  const planViews = plans.map((p) => {
    const spec = JSON.parse(p.spec) as { destinations: string[] };
    const dests = spec.destinations.map((destinationId) => {
      const ok = runs.find((r) => r.planId === p.id && r.destinationId === destinationId && r.status === 'completed');
      const bad = runs.find((r) => r.planId === p.id && r.destinationId === destinationId && r.status === 'failed');
      const lastStatus = ok && (!bad || ok.at >= bad.at) ? ('completed' as const) : bad ? ('failed' as const) : null;
      const error = lastStatus === 'failed' ? (failureErrors.find((f) => f.plan_id === p.id && f.destination_id === destinationId && Number(f.finished_at) === bad!.at)?.error ?? null) : null;
      return { destinationId, name: destinationName.get(destinationId) ?? 'removed destination', lastSuccessAt: ok?.at ?? null, lastSnapshotId: ok ? (latestOf.get(p.id)?.snapshot_id ?? null) : null, lastStatus, lastError: error };
    });
    const successes = dests.map((d) => d.lastSuccessAt).filter((t): t is number => t !== null);
    return { id: p.id, name: p.name, agentId: p.agent_id, enabled: p.enabled === 1, schedule: p.schedule, lastSuccessAt: successes.length ? Math.max(...successes) : null, destinations: dests };
  });

  const machines = agents.map((a) => {
    const own = planViews.filter((p) => p.agentId === a.id);
    const enabled = own.filter((p) => p.enabled);
    const planIds = new Set(own.map((p) => p.id));
    const destIds = new Set(own.flatMap((p) => p.destinations.map((d) => d.destinationId)));
    const concern = alerts.find((al) => (al.kind === 'agent-offline' && al.subject_id === a.id) || ((al.kind === 'job-failed' || al.kind === 'plan-overdue' || al.kind === 'retention-failed') && planIds.has(al.subject_id)) || (al.kind === 'destination-failing' && destIds.has(al.subject_id)));
    const successes = own.map((p) => p.lastSuccessAt).filter((t): t is number => t !== null);
    const lastSuccessAt = successes.length ? Math.max(...successes) : null;
    const neverBackedUp = enabled.find((p) => p.destinations.some((d) => d.lastSuccessAt === null));
    let state: 'protected' | 'at-risk' | 'unprotected';
    let reason: string | null = null;
    if (concern || a.status === 'offline' || enabled.some((p) => p.destinations.some((d) => d.lastStatus === 'failed'))) {
      state = 'at-risk';
      reason = concern?.message ?? (a.status === 'offline' ? 'the agent is offline' : 'the last run failed on a destination');
    } else if (enabled.length === 0) {
      state = 'unprotected';
      reason = own.length === 0 ? 'no plan yet' : 'every plan is disabled';
    } else if (neverBackedUp) {
      state = 'unprotected';
      reason = `plan ${neverBackedUp.name} has not completed yet`;
    } else {
      state = 'protected';
    }
    return { id: a.id, hostname: a.hostname, status: a.status, plans: own.length, lastSuccessAt, state, reason };
  });

  return {
    machines,
    plans: planViews,
    bytesProtected: latest.reduce((sum, j) => sum + Number(j.bytes_total), 0),
    filesProtected: latest.reduce((sum, j) => sum + Math.max(Number(j.files_total), Number(j.files_done)), 0),
    openAlerts: alerts.length,
    unacknowledgedAlerts: alerts.filter((a) => a.acknowledged_at === null).length,
    activeJobs: Number(active.n),
    daily: await dailySeries(ctx, userId, dayStart(now, tzOffsetMinutes) - (OVERVIEW_DAYS - 1) * DAY_MS, now + 1, tzOffsetMinutes),
  };
}

/** The start of the caller's local day containing `at`. */
function dayStart(at: number, tzOffsetMinutes: number): number {
  const shift = tzOffsetMinutes * 60_000;
  return Math.floor((at - shift) / DAY_MS) * DAY_MS + shift;
}

const tzOffset = { type: 'integer', minimum: -840, maximum: 840 } as const;

export async function overviewRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get<{ Querystring: { tzOffset?: number } }>(
    '/api/dashboard/overview',
    {
      schema: {
        summary: 'the overview: machines and whether they are protected, last success per plan and destination, data protected, open alerts, active jobs, 30 days of data added and outcomes',
        querystring: { type: 'object', additionalProperties: false, properties: { tzOffset } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      return buildOverview(ctx, user.id, request.query.tzOffset ?? 0);
    },
  );

  app.get<{ Querystring: { from: number; to: number; tzOffset?: number } }>(
    '/api/dashboard/daily',
    {
      schema: {
        summary: 'data added and job outcomes per local day of [from, to) (epoch ms; tzOffset as getTimezoneOffset)',
        querystring: { type: 'object', required: ['from', 'to'], additionalProperties: false, properties: { from: { type: 'integer', minimum: 0 }, to: { type: 'integer', minimum: 0 }, tzOffset } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const { from, to } = request.query;
      if (to <= from) throw new HttpError(400, 'to must be after from');
      if (to - from > MAX_DAYS * DAY_MS) throw new HttpError(400, `ask for at most ${MAX_DAYS} days at once`);
      return dailySeries(ctx, user.id, from, to, request.query.tzOffset ?? 0);
    },
  );
}
