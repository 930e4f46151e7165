// Plans: what an agent backs up, where, and when. Created and edited here; the agent is told of every
// change (a 'plans' message), and schedules run on the server.
import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { BackupParams, DestinationRef, PlanSummary } from '../../agent/protocol.ts';
import type { RetryPolicy } from '../../jobs/index.ts';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { isUniqueViolation } from '../db/errors.ts';
import type { Destination, Plan } from '../db/schema.ts';
import { HttpError, notFound } from '../http-error.ts';
import { apiJob, requestJob } from '../jobs/lifecycle.ts';
import { agentOfUser } from '../agents/agents.ts';
import { destinationLimits } from '../agents/limits.ts';
import { pruneDue } from '../../daemon/plan-retention.ts';
import { checkPlanExtras, mergeExtras, planExtrasBody, type PlanExtras } from './plan-extras.ts';
import { mergeWorkers, planWorkersBody, scaleOutParams, withoutWorkers, type PlanWorkers } from './plan-workers.ts';

export interface PlanSpec extends PlanExtras, PlanWorkers {
  readonly paths: string[];
  readonly excludes: string[];
  readonly tags: string[];
  readonly oneFileSystem: boolean;
  readonly destinations: string[];
}

/** Checks a cron schedule; the server's scheduler decides when it fires. */
export type ScheduleCheck = (cron: string, timezone: string | undefined) => void;

export function apiPlan(p: Plan) {
  const spec = JSON.parse(p.spec) as PlanSpec;
  // The passphrase itself never leaves the server: only whether one is set.
  return { id: p.id, name: p.name, agentId: p.agent_id, ...spec, schedule: p.schedule, timezone: p.timezone, enabled: p.enabled === 1, revision: p.revision, createdAt: p.created_at, updatedAt: p.updated_at, hasPassphrase: p.passphrase !== null };
}

const planBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[\\w.-]{1,100}$' },
    agentId: { type: 'string' },
    paths: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 4096 } },
    excludes: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 4096 } },
    tags: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 100 } },
    oneFileSystem: { type: 'boolean' },
    destinations: { type: 'array', minItems: 1, maxItems: 10, items: { type: 'string' } },
    schedule: { type: ['string', 'null'], maxLength: 200 },
    timezone: { type: ['string', 'null'], maxLength: 100 },
    enabled: { type: 'boolean' },
    ...planExtrasBody,
    ...planWorkersBody,
  },
} as const;

interface PlanBody {
  name?: string;
  agentId?: string;
  paths?: string[];
  excludes?: string[];
  tags?: string[];
  oneFileSystem?: boolean;
  destinations?: string[];
  schedule?: string | null;
  timezone?: string | null;
  enabled?: boolean;
  sources?: unknown[];
  hooks?: unknown;
  notify?: unknown;
  retention?: unknown;
  pruneEvery?: number | null;
  workers?: number | null;
  workerLabel?: string | null;
  allowPartial?: boolean | null;
}

export function destinationRef(d: Destination): DestinationRef {
  return { id: d.id, name: d.name, kind: d.kind, location: d.location, limits: destinationLimits(d) };
}

/** The destinations of a user with these ids, in the given order; 400 if one is not theirs. */
export async function destinationsOf(ctx: ServerContext, userId: string, ids: readonly string[]): Promise<Destination[]> {
  if (new Set(ids).size !== ids.length) throw new HttpError(400, 'a destination is listed twice');
  const rows = ids.length ? await ctx.db.selectFrom('destinations').selectAll().where('user_id', '=', userId).where('id', 'in', [...ids]).execute() : [];
  return ids.map((id) => rows.find((r) => r.id === id) ?? (() => { throw new HttpError(400, "a destination of the plan does not exist"); })());
}

export async function planOfUser(ctx: ServerContext, userId: string, id: string): Promise<Plan> {
  const plan = await ctx.db.selectFrom('plans').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
  if (!plan) throw notFound('plan');
  return plan;
}

/** What the agent runs for a plan: the plan as it is now, with its destinations spelled out. */
export async function backupParams(ctx: ServerContext, plan: Plan): Promise<BackupParams> {
  const spec = JSON.parse(plan.spec) as PlanSpec;
  const destinations = await destinationsOf(ctx, plan.user_id, spec.destinations);
  const scaleOut = await scaleOutParams(ctx, plan, spec);
  return {
    planId: plan.id,
    planName: plan.name,
    paths: spec.paths,
    excludes: spec.excludes,
    tags: spec.tags,
    oneFileSystem: spec.oneFileSystem,
    destinations: destinations.map(destinationRef),
    ...(spec.sources ? { sources: spec.sources } : {}),
    ...(spec.hooks ? { hooks: spec.hooks } : {}),
    ...(spec.retention ? { retention: spec.retention, prune: pruneDue(spec.pruneEvery, (await completedRuns(ctx, plan.id)) + 1) } : {}),
    ...(scaleOut ? { scaleOut } : {}),
    // Holding the passphrase, the server applies the retention on its own S3 destinations (write-only for agents).
    ...(spec.retention && plan.passphrase !== null && destinations.some((d) => d.kind === 's3') ? { retentionByServer: true } : {}),
  };
}

/** How many runs of the plan completed (the one being asked for would be the next). */
async function completedRuns(ctx: ServerContext, planId: string): Promise<number> {
  const row = await ctx.db.selectFrom('jobs').select((eb) => eb.fn.countAll<number>().as('n')).where('plan_id', '=', planId).where('kind', '=', 'backup').where('status', '=', 'completed').executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Queues a run of the plan on its agent (one unfinished run per plan: PlanBusyError otherwise). */
export async function runPlan(ctx: ServerContext, plan: Plan, trigger: string, retryPolicy: RetryPolicy) {
  const params = await backupParams(ctx, plan);
  return requestJob(ctx, { userId: plan.user_id, agentId: plan.agent_id, planId: plan.id, planName: plan.name, kind: 'backup', params, trigger, destinationIds: params.destinations.map((d) => d.id) }, retryPolicy);
}

/** Tells an agent its current plans. */
export async function pushPlans(ctx: ServerContext, agentId: string): Promise<void> {
  const plans = await ctx.db.selectFrom('plans').selectAll().where('agent_id', '=', agentId).orderBy('name').execute();
  const summary: PlanSummary[] = plans.map((p) => ({ id: p.id, name: p.name, revision: p.revision, paths: (JSON.parse(p.spec) as PlanSpec).paths, schedule: p.schedule }));
  await ctx.events.append({ agentId, type: 'agent.message', data: { type: 'plans', plans: summary } });
}

export interface PlanHooks {
  readonly checkSchedule: ScheduleCheck;
  /** Told after a plan is created, changed or deleted (the scheduler re-reads it). */
  readonly changed: (planId: string) => Promise<void>;
  readonly retryPolicy: RetryPolicy;
}

export async function planRoutes(app: FastifyInstance, { ctx, hooks }: { ctx: ServerContext; hooks: PlanHooks }): Promise<void> {
  const validate = async (userId: string, body: PlanBody) => {
    if (body.agentId !== undefined) await agentOfUser(ctx, userId, body.agentId).catch(() => { throw new HttpError(400, "the agent of the plan does not exist"); });
    if (body.destinations !== undefined) await destinationsOf(ctx, userId, body.destinations);
    if (body.schedule) {
      try {
        hooks.checkSchedule(body.schedule, body.timezone ?? undefined);
      } catch (err) {
        throw new HttpError(400, `schedule: ${(err as Error).message}`);
      }
    }
  };

  app.get('/api/plans', { schema: { summary: "the user's plans" } }, async (request) => {
    const { user } = requireSession(request);
    return (await ctx.db.selectFrom('plans').selectAll().where('user_id', '=', user.id).orderBy('name').execute()).map(apiPlan);
  });

  app.get<{ Params: { id: string } }>('/api/plans/:id', { schema: { summary: 'one plan' } }, async (request) => {
    const { user } = requireSession(request);
    return apiPlan(await planOfUser(ctx, user.id, request.params.id));
  });

  app.post<{ Body: PlanBody }>('/api/plans', { schema: { summary: 'create a plan for an agent', body: { ...planBody, required: ['name', 'agentId', 'paths', 'destinations'] } } }, async (request, reply) => {
    const { user } = requireSession(request);
    const body = request.body;
    await validate(user.id, body);
    const now = ctx.now();
    const extras = mergeExtras({}, body as Record<string, unknown>, checkPlanExtras(body as Record<string, unknown>));
    const spec: PlanSpec = { paths: body.paths!, excludes: body.excludes ?? [], tags: body.tags ?? [], oneFileSystem: body.oneFileSystem ?? false, destinations: body.destinations!, ...extras, ...mergeWorkers({}, body, extras.sources !== undefined) };
    if (spec.paths.length === 0 && !spec.sources) throw new HttpError(400, 'paths: give at least one path to back up, or a source (a database dump or a command)');
    const plan: Plan = { id: crypto.randomUUID(), user_id: user.id, agent_id: body.agentId!, name: body.name!, spec: JSON.stringify(spec), schedule: body.schedule ?? null, timezone: body.timezone ?? null, enabled: body.enabled === false ? 0 : 1, revision: 1, created_at: now, updated_at: now, passphrase: null };
    try {
      await ctx.db.insertInto('plans').values(plan).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new HttpError(409, `a plan named ${plan.name} exists`);
      throw err;
    }
    await hooks.changed(plan.id);
    await pushPlans(ctx, plan.agent_id);
    reply.code(201);
    return apiPlan(plan);
  });

  app.put<{ Params: { id: string }; Body: PlanBody }>('/api/plans/:id', { schema: { summary: 'change a plan (fields left out stay)', body: planBody } }, async (request) => {
    const { user } = requireSession(request);
    const plan = await planOfUser(ctx, user.id, request.params.id);
    const body = request.body;
    await validate(user.id, { ...body, timezone: body.timezone !== undefined ? body.timezone : plan.timezone, schedule: body.schedule !== undefined ? body.schedule : plan.schedule });
    const old = JSON.parse(plan.spec) as PlanSpec;
    const extras = mergeExtras(withoutWorkers(old), body as Record<string, unknown>, checkPlanExtras(body as Record<string, unknown>));
    const spec: PlanSpec = { ...extras, ...mergeWorkers(old, body, extras.sources !== undefined), paths: body.paths ?? old.paths, excludes: body.excludes ?? old.excludes, tags: body.tags ?? old.tags, oneFileSystem: body.oneFileSystem ?? old.oneFileSystem, destinations: body.destinations ?? old.destinations };
    if (spec.paths.length === 0 && !spec.sources) throw new HttpError(400, 'paths: give at least one path to back up, or a source (a database dump or a command)');
    let updated: Plan;
    try {
      updated = await ctx.db
        .updateTable('plans')
        .set({
          name: body.name ?? plan.name,
          agent_id: body.agentId ?? plan.agent_id,
          spec: JSON.stringify(spec),
          schedule: body.schedule !== undefined ? body.schedule : plan.schedule,
          timezone: body.timezone !== undefined ? body.timezone : plan.timezone,
          enabled: body.enabled === undefined ? plan.enabled : body.enabled ? 1 : 0,
          revision: plan.revision + 1,
          updated_at: ctx.now(),
        })
        .where('id', '=', plan.id)
        .where('user_id', '=', user.id)
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (err) {
      if (isUniqueViolation(err)) throw new HttpError(409, `a plan named ${body.name} exists`);
      throw err;
    }
    await hooks.changed(plan.id);
    await pushPlans(ctx, updated.agent_id);
    if (updated.agent_id !== plan.agent_id) await pushPlans(ctx, plan.agent_id);
    return apiPlan(updated);
  });

  app.delete<{ Params: { id: string } }>('/api/plans/:id', { schema: { summary: 'delete a plan (its history and snapshots stay)' } }, async (request) => {
    const { user } = requireSession(request);
    const plan = await planOfUser(ctx, user.id, request.params.id);
    await ctx.db.deleteFrom('plans').where('id', '=', plan.id).where('user_id', '=', user.id).execute();
    await hooks.changed(plan.id);
    await pushPlans(ctx, plan.agent_id);
    return { ok: true };
  });

  app.post<{ Params: { id: string } }>('/api/plans/:id/run', { schema: { summary: 'run the plan now' } }, async (request, reply) => {
    const { user } = requireSession(request);
    const plan = await planOfUser(ctx, user.id, request.params.id);
    reply.code(202);
    return apiJob(await runPlan(ctx, plan, 'manual', hooks.retryPolicy));
  });
}
