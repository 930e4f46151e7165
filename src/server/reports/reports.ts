// Reports over a day, a week or a month (the period ending at `at`): jobs run, success rate, data
// protected and added, the slowest destinations and the failures; as JSON, or the jobs as CSV.
import type { FastifyInstance } from 'fastify';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';

export const PERIODS = { day: 24 * 3600_000, week: 7 * 24 * 3600_000, month: 30 * 24 * 3600_000 } as const;
export type Period = keyof typeof PERIODS;

export interface Report {
  readonly period: Period;
  readonly from: number;
  readonly to: number;
  readonly jobs: { readonly total: number; readonly byStatus: Record<string, number> };
  /** Completed among the finished backups (completed + failed); null when none finished. */
  readonly successRate: number | null;
  /** Bytes of the sources as of each plan's latest completed backup. */
  readonly bytesProtected: number;
  /** New bytes stored by the period's backups (after dedup and compression). */
  readonly bytesAdded: number;
  readonly slowestDestinations: readonly { destinationId: string; name: string | null; bytesPerSecond: number; jobs: number }[];
  readonly failures: readonly { jobId: string; planId: string | null; agentId: string; error: string | null; finishedAt: number | null }[];
}

export async function buildReport(ctx: ServerContext, userId: string, period: Period, at: number): Promise<Report> {
  const from = at - PERIODS[period];
  const jobs = await ctx.db.selectFrom('jobs').selectAll().where('user_id', '=', userId).where('requested_at', '>=', from).where('requested_at', '<', at).execute();
  const byStatus: Record<string, number> = {};
  for (const j of jobs) byStatus[j.status] = (byStatus[j.status] ?? 0) + 1;
  const backups = jobs.filter((j) => j.kind === 'backup');
  const finished = backups.filter((j) => j.status === 'completed' || j.status === 'failed');
  const completed = backups.filter((j) => j.status === 'completed');
  const latest = await ctx.db
    .selectFrom('jobs')
    .select(['plan_id', 'bytes_total', 'finished_at'])
    .where('user_id', '=', userId)
    .where('kind', '=', 'backup')
    .where('status', '=', 'completed')
    .where('finished_at', '<', at)
    .where('plan_id', 'is not', null)
    .orderBy('finished_at', 'desc')
    .execute();
  const perPlan = new Map<string, number>();
  for (const j of latest) if (!perPlan.has(j.plan_id!)) perPlan.set(j.plan_id!, j.bytes_total);
  const speeds = new Map<string, { bytes: number; ms: number; jobs: number }>();
  if (completed.length > 0) {
    const rows = await ctx.db.selectFrom('job_destinations').selectAll().where('job_id', 'in', completed.map((j) => j.id)).where('status', '=', 'completed').execute();
    for (const r of rows) {
      const job = completed.find((j) => j.id === r.job_id)!;
      const ms = (r.finished_at ?? job.finished_at ?? 0) - (job.started_at ?? job.requested_at);
      if (ms <= 0) continue;
      const s = speeds.get(r.destination_id) ?? { bytes: 0, ms: 0, jobs: 0 };
      speeds.set(r.destination_id, { bytes: s.bytes + job.bytes_done, ms: s.ms + ms, jobs: s.jobs + 1 });
    }
  }
  const names = new Map((await ctx.db.selectFrom('destinations').select(['id', 'name']).where('user_id', '=', userId).execute()).map((d) => [d.id, d.name]));
  const slowest = [...speeds]
    .map(([destinationId, s]) => ({ destinationId, name: names.get(destinationId) ?? null, bytesPerSecond: Math.round((s.bytes * 1000) / s.ms), jobs: s.jobs }))
    .sort((a, b) => a.bytesPerSecond - b.bytesPerSecond)
    .slice(0, 5);
  return {
    period,
    from,
    to: at,
    jobs: { total: jobs.length, byStatus },
    successRate: finished.length ? completed.length / finished.length : null,
    bytesProtected: [...perPlan.values()].reduce((a, b) => a + b, 0),
    bytesAdded: completed.reduce((a, j) => a + j.bytes_added, 0),
    slowestDestinations: slowest,
    failures: jobs.filter((j) => j.status === 'failed').map((j) => ({ jobId: j.id, planId: j.plan_id, agentId: j.agent_id, error: j.error, finishedAt: j.finished_at })),
  };
}

function csvField(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  // Quote fields with separators, and neutralise leading = + - @ so a spreadsheet does not run them.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

const CSV_COLUMNS = ['id', 'kind', 'status', 'plan_id', 'agent_id', 'requested_at', 'started_at', 'finished_at', 'bytes_total', 'bytes_done', 'files_done', 'bytes_added', 'snapshot_id', 'error'] as const;

export async function reportRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get<{ Querystring: { period?: Period; at?: number; format?: 'json' | 'csv' } }>(
    '/api/reports',
    {
      schema: {
        summary: 'a report for the day, week or month ending at `at` (default now): JSON summary, or the jobs as CSV',
        querystring: { type: 'object', additionalProperties: false, properties: { period: { enum: ['day', 'week', 'month'] }, at: { type: 'integer', minimum: 0 }, format: { enum: ['json', 'csv'] } } },
      },
    },
    async (request, reply) => {
      const { user } = requireSession(request);
      const period = request.query.period ?? 'week';
      const at = request.query.at ?? ctx.now();
      if (request.query.format !== 'csv') return buildReport(ctx, user.id, period, at);
      const jobs = await ctx.db.selectFrom('jobs').selectAll().where('user_id', '=', user.id).where('requested_at', '>=', at - PERIODS[period]).where('requested_at', '<', at).orderBy('requested_at').execute();
      const lines = [CSV_COLUMNS.join(','), ...jobs.map((j) => CSV_COLUMNS.map((c) => csvField(j[c])).join(','))];
      reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="coffer-${period}-${new Date(at).toISOString().slice(0, 10)}.csv"`);
      return `${lines.join('\r\n')}\r\n`;
    },
  );
}
