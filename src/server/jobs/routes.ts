// History and remote control: jobs with filters and pagination, one job with its destinations and
// latest progress, its log, pause/resume/cancel, and restores started onto an agent.
import type { FastifyInstance } from 'fastify';
import type { RetryPolicy } from '../../jobs/index.ts';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { HttpError, notFound } from '../http-error.ts';
import { agentOfUser } from '../agents/agents.ts';
import { destinationRef, destinationsOf } from '../plans/plans.ts';
import { apiJob, controlJob, requestJob } from './lifecycle.ts';

const STATUSES = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'interrupted'];

interface HistoryQuery {
  status?: string;
  agent?: string;
  plan?: string;
  kind?: 'backup' | 'restore';
  from?: number;
  to?: number;
  limit?: number;
  /** The `next` of the previous page. */
  before?: string;
}

/** Pages go newest first; a cursor is "requested_at:id" of the last job of the previous page. */
function parseCursor(cursor: string): [number, string] {
  const m = /^(\d+):([\w-]+)$/.exec(cursor);
  if (!m) throw new HttpError(400, 'before must be the `next` value of the previous page');
  return [Number(m[1]), m[2]!];
}

export async function jobRoutes(app: FastifyInstance, { ctx, retryPolicy }: { ctx: ServerContext; retryPolicy: RetryPolicy }): Promise<void> {
  app.get<{ Querystring: HistoryQuery }>(
    '/api/jobs',
    {
      schema: {
        summary: 'job history, newest first: filters status (comma-separated), agent, plan, kind, from/to (epoch ms of the request); pages of `limit` with `before`',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', maxLength: 200 },
            agent: { type: 'string' },
            plan: { type: 'string' },
            kind: { enum: ['backup', 'restore'] },
            from: { type: 'integer', minimum: 0 },
            to: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 500 },
            before: { type: 'string', maxLength: 100 },
          },
        },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const q = request.query;
      const limit = q.limit ?? 50;
      let query = ctx.db.selectFrom('jobs').selectAll().where('user_id', '=', user.id);
      if (q.status) {
        const statuses = q.status.split(',').map((s) => s.trim());
        const unknown = statuses.find((s) => !STATUSES.includes(s));
        if (unknown) throw new HttpError(400, `unknown status "${unknown}"; use ${STATUSES.join(', ')}`);
        query = query.where('status', 'in', statuses as never[]);
      }
      if (q.agent) query = query.where('agent_id', '=', q.agent);
      if (q.plan) query = query.where('plan_id', '=', q.plan);
      if (q.kind) query = query.where('kind', '=', q.kind);
      if (q.from !== undefined) query = query.where('requested_at', '>=', q.from);
      if (q.to !== undefined) query = query.where('requested_at', '<', q.to);
      if (q.before) {
        const [at, id] = parseCursor(q.before);
        query = query.where((eb) => eb.or([eb('requested_at', '<', at), eb.and([eb('requested_at', '=', at), eb('id', '<', id)])]));
      }
      const rows = await query.orderBy('requested_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return { jobs: page.map(apiJob), ...(rows.length > limit && last ? { next: `${last.requested_at}:${last.id}` } : {}) };
    },
  );

  app.get<{ Params: { id: string } }>('/api/jobs/:id', { schema: { summary: 'one job: lifecycle, per-destination results and the latest progress' } }, async (request) => {
    const { user } = requireSession(request);
    const job = await ctx.db.selectFrom('jobs').selectAll().where('id', '=', request.params.id).where('user_id', '=', user.id).executeTakeFirst();
    if (!job) throw notFound('job');
    const destinations = await ctx.db
      .selectFrom('job_destinations')
      .leftJoin('destinations', 'destinations.id', 'job_destinations.destination_id')
      .select(['job_destinations.destination_id', 'destinations.name', 'job_destinations.status', 'job_destinations.error', 'job_destinations.finished_at'])
      .where('job_id', '=', job.id)
      .execute();
    return {
      ...apiJob(job),
      progress: job.progress ? JSON.parse(job.progress) : null,
      destinations: destinations.map((d) => ({ destinationId: d.destination_id, name: d.name, status: d.status, error: d.error, finishedAt: d.finished_at })),
    };
  });

  app.get<{ Params: { id: string }; Querystring: { after?: number; limit?: number } }>(
    '/api/jobs/:id/log',
    {
      schema: {
        summary: "a job's log lines after line id `after` (every run, oldest first)",
        querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 5000 } } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const job = await ctx.db.selectFrom('jobs').select('id').where('id', '=', request.params.id).where('user_id', '=', user.id).executeTakeFirst();
      if (!job) throw notFound('job');
      const lines = await ctx.db.selectFrom('job_logs').selectAll().where('job_id', '=', job.id).where('id', '>', request.query.after ?? 0).orderBy('id').limit(request.query.limit ?? 1000).execute();
      return { lines: lines.map((l) => ({ id: Number(l.id), at: l.at, level: l.level, message: l.message })) };
    },
  );

  for (const action of ['pause', 'resume', 'cancel'] as const) {
    app.post<{ Params: { id: string } }>(`/api/jobs/:id/${action}`, { schema: { summary: `${action} a job` } }, async (request, reply) => {
      const { user } = requireSession(request);
      reply.code(202);
      return apiJob(await controlJob(ctx, user.id, request.params.id, action));
    });
  }

  app.post<{ Body: { agentId: string; destinationId: string; snapshot: string; target: string; include?: string[] } }>(
    '/api/restores',
    {
      schema: {
        summary: 'restore a snapshot (or some paths of it) onto an agent',
        body: {
          type: 'object',
          required: ['agentId', 'destinationId', 'snapshot', 'target'],
          additionalProperties: false,
          properties: {
            agentId: { type: 'string' },
            destinationId: { type: 'string' },
            snapshot: { type: 'string', minLength: 1, maxLength: 100 },
            target: { type: 'string', minLength: 1, maxLength: 4096 },
            include: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 4096 } },
          },
        },
      },
    },
    async (request, reply) => {
      const { user } = requireSession(request);
      const body = request.body;
      const agent = await agentOfUser(ctx, user.id, body.agentId).catch(() => {
        throw notFound('agent');
      });
      const [destination] = await destinationsOf(ctx, user.id, [body.destinationId]).catch(() => {
        throw notFound('destination');
      });
      if (!body.target.startsWith('/')) throw new HttpError(400, 'target must be an absolute path on the agent');
      const job = await requestJob(
        ctx,
        { userId: user.id, agentId: agent.id, planId: null, kind: 'restore', params: { destinations: [destinationRef(destination!)], snapshot: body.snapshot, target: body.target, include: body.include ?? [] }, trigger: 'manual', destinationIds: [destination!.id] },
        retryPolicy,
      );
      reply.code(202);
      return apiJob(job);
    },
  );
}
