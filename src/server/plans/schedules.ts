// When plans run: the same cron rules as the daemon (src/config/schedule.ts), on one of two engines.
// Embedded, the daemon's own Scheduler (overdue once at start-up, clock jumps, safe timers). On
// PostgreSQL, pg-boss's distributed cron, which fires each slot on one server only, plus a check at
// start-up for slots missed while no server ran. Either way a due plan is one run: a plan that still
// has an unfinished job is skipped (the unique index on jobs makes that hold across servers).
import { latestSlot, parseSchedule } from '../../config/schedule.ts';
import { Scheduler } from '../../daemon/scheduler.ts';
import type { RetryPolicy } from '../../jobs/index.ts';
import { raiseAlert, resolveAlerts } from '../alerts/alerts.ts';
import type { ServerContext } from '../context.ts';
import type { Plan } from '../db/schema.ts';
import type { PgBossQueue } from '../queue/pg-boss-queue.ts';
import { PlanBusyError } from '../jobs/lifecycle.ts';
import { runPlan, type ScheduleCheck } from './plans.ts';

export const checkSchedule: ScheduleCheck = (cron, timezone) => {
  parseSchedule({ cron, ...(timezone ? { timezone } : {}) });
};

function scheduleOf(plan: Plan) {
  return parseSchedule({ cron: plan.schedule!, ...(plan.timezone ? { timezone: plan.timezone } : {}) });
}

async function scheduledPlans(ctx: ServerContext): Promise<Plan[]> {
  return ctx.db.selectFrom('plans').selectAll().where('enabled', '=', 1).where('schedule', 'is not', null).execute();
}

async function lastRequested(ctx: ServerContext): Promise<Map<string, number>> {
  const rows = await ctx.db.selectFrom('jobs').select(['plan_id', (eb) => eb.fn.max('requested_at').as('at')]).where('plan_id', 'is not', null).groupBy('plan_id').execute();
  return new Map(rows.map((r) => [r.plan_id!, Number(r.at)]));
}

export interface PlanSchedules {
  start(): Promise<void>;
  stop(): Promise<void>;
  planChanged(planId: string): Promise<void>;
}

async function runDue(ctx: ServerContext, planId: string, reason: string, retryPolicy: RetryPolicy): Promise<void> {
  const plan = await ctx.db.selectFrom('plans').selectAll().where('id', '=', planId).where('enabled', '=', 1).executeTakeFirst();
  if (!plan) return;
  try {
    await runPlan(ctx, plan, reason, retryPolicy);
    ctx.log.info({ plan: plan.id, name: plan.name, reason }, 'scheduled run queued');
  } catch (err) {
    if (err instanceof PlanBusyError) ctx.log.info({ plan: plan.id }, 'scheduled run skipped: the plan is still running');
    else ctx.log.error({ err, plan: plan.id }, 'scheduled run failed to start');
  }
}

/** The embedded engine: the daemon's scheduler in this process. */
export class InProcessSchedules implements PlanSchedules {
  private readonly ctx: ServerContext;
  private readonly retryPolicy: RetryPolicy;
  private readonly scheduler: Scheduler;
  private history = new Map<string, number>();

  constructor(ctx: ServerContext, retryPolicy: RetryPolicy) {
    this.ctx = ctx;
    this.retryPolicy = retryPolicy;
    this.scheduler = new Scheduler({
      history: { lastRun: (planId) => this.history.get(planId) },
      onDue: (due) => {
        this.history.set(due.plan, this.ctx.now());
        void runDue(this.ctx, due.plan, due.reason, this.retryPolicy);
      },
      onError: (err) => this.ctx.log.error({ err }, 'scheduler failed'),
    });
  }

  private async reload(): Promise<void> {
    this.history = await lastRequested(this.ctx);
    const plans = [];
    for (const plan of await scheduledPlans(this.ctx)) {
      try {
        plans.push({ name: plan.id, schedule: scheduleOf(plan) });
      } catch (err) {
        this.ctx.log.error({ err, plan: plan.id }, 'plan has an invalid schedule; it is not scheduled');
      }
    }
    this.scheduler.setPlans(plans);
  }

  async start(): Promise<void> {
    await this.reload();
    this.scheduler.start();
  }

  async stop(): Promise<void> {
    this.scheduler.stop();
  }

  async planChanged(): Promise<void> {
    await this.reload();
  }
}

const SCHEDULE_QUEUE = 'plan-schedule';

/** The PostgreSQL engine: pg-boss cron schedules, one per plan (keyed by plan id). */
export class PgBossSchedules implements PlanSchedules {
  private readonly ctx: ServerContext;
  private readonly queue: PgBossQueue;
  private readonly retryPolicy: RetryPolicy;

  constructor(ctx: ServerContext, queue: PgBossQueue, retryPolicy: RetryPolicy) {
    this.ctx = ctx;
    this.queue = queue;
    this.retryPolicy = retryPolicy;
  }

  async start(): Promise<void> {
    await this.queue.ensureQueue(SCHEDULE_QUEUE);
    await this.queue.boss.work<{ planId: string }>(SCHEDULE_QUEUE, { pollingIntervalSeconds: 2 }, async (jobs) => {
      for (const job of jobs) await runDue(this.ctx, job.data.planId, 'schedule', this.retryPolicy);
    });
    // Slots missed while no server ran fire once now (every server may do this: one run per plan holds).
    const last = await lastRequested(this.ctx);
    const now = this.ctx.now();
    for (const plan of await scheduledPlans(this.ctx)) {
      await this.planChanged(plan.id);
      const slot = latestSlot(scheduleOf(plan), now);
      const ran = last.get(plan.id);
      if (slot !== undefined && ran !== undefined && ran < slot && now - slot > 60_000) await runDue(this.ctx, plan.id, 'overdue', this.retryPolicy);
    }
  }

  async stop(): Promise<void> {}

  async planChanged(planId: string): Promise<void> {
    const plan = await this.ctx.db.selectFrom('plans').selectAll().where('id', '=', planId).executeTakeFirst();
    if (plan?.enabled && plan.schedule) {
      await this.queue.boss.schedule(SCHEDULE_QUEUE, plan.schedule, { planId }, { key: planId, ...(plan.timezone ? { tz: plan.timezone } : {}) });
    } else {
      await this.queue.boss.unschedule(SCHEDULE_QUEUE, planId);
    }
  }
}

/**
 * A plan is overdue when it has had no completed backup since the slot before its latest one: it has
 * missed a whole period. The alert resolves itself once a backup completes.
 */
export async function checkOverduePlans(ctx: ServerContext): Promise<void> {
  const now = ctx.now();
  for (const plan of await scheduledPlans(ctx)) {
    let previous: number | undefined;
    try {
      const schedule = scheduleOf(plan);
      const latest = latestSlot(schedule, now);
      previous = latest === undefined ? undefined : latestSlot(schedule, latest - 1);
    } catch {
      continue;
    }
    if (previous === undefined || plan.created_at > previous) continue;
    const done = await ctx.db.selectFrom('jobs').select('id').where('plan_id', '=', plan.id).where('status', '=', 'completed').where('finished_at', '>=', previous).limit(1).executeTakeFirst();
    if (done) await resolveAlerts(ctx, plan.user_id, 'plan-overdue', plan.id);
    else await raiseAlert(ctx, plan.user_id, 'plan-overdue', plan.id, `plan ${plan.name} is overdue: no completed backup since ${new Date(previous).toISOString()}`);
  }
}
