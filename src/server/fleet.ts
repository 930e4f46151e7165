// The whole fleet server as one Fastify plugin set: features, the agent hub, periodic checks, and
// schedules. `coffer server` and the tests start it the same way.
import type { FastifyInstance } from 'fastify';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../jobs/index.ts';
import { agentRoutes } from './agents/routes.ts';
import { AgentHub } from './agents/hub.ts';
import { alertRoutes } from './alerts/routes.ts';
import type { ServerContext } from './context.ts';
import { dashboardRoutes } from './dashboard/routes.ts';
import { eventRoutes } from './events/routes.ts';
import { redispatchLost, requeuePending, RETENTION_QUEUE } from './jobs/lifecycle.ts';
import { jobRoutes } from './jobs/routes.ts';
import { Monitor } from './monitor.ts';
import { mailRoutes, ServerMailer } from './notify/mail.ts';
import { planPassphraseRoutes } from './plans/plan-passphrase.ts';
import { planRoutes } from './plans/plans.ts';
import { applyServerRetention } from './plans/server-retention.ts';
import { checkOverduePlans, checkSchedule, InProcessSchedules, PgBossSchedules, type PlanSchedules } from './plans/schedules.ts';
import { PgBossQueue } from './queue/pg-boss-queue.ts';
import { reportRoutes } from './reports/reports.ts';
import { fleetShardRoutes } from './scale-out/fleet-routes.ts';
import { type FleetShardRuns, MemoryFleetShards } from './scale-out/fleet-shards.ts';
import { PgFleetShards } from './scale-out/pg-fleet-shards.ts';
import { destinationRoutes, testDueDestinations } from './storage/destinations.ts';
import { storageRoutes } from './storage/broker.ts';

export interface FleetOptions {
  readonly retryPolicy?: RetryPolicy;
  /** The one-line message for a failure of the server's own work (a plan's retention): the CLI's rules, handed down. */
  readonly describeError?: (err: unknown) => string;
  readonly monitorIntervalMs?: number;
  readonly mailer?: ServerMailer;
}

export class Fleet {
  readonly ctx: ServerContext;
  readonly hub: AgentHub;
  readonly monitor: Monitor;
  readonly retryPolicy: RetryPolicy;
  readonly schedules: PlanSchedules;
  readonly mailer: ServerMailer;
  readonly shards: FleetShardRuns;
  private readonly describeError: (err: unknown) => string;

  constructor(ctx: ServerContext, options: FleetOptions = {}) {
    this.ctx = ctx;
    this.retryPolicy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
    this.describeError = options.describeError ?? ((err) => (err instanceof Error ? err.message : String(err)));
    this.hub = new AgentHub(ctx, this.retryPolicy);
    this.schedules = ctx.queue instanceof PgBossQueue ? new PgBossSchedules(ctx, ctx.queue, this.retryPolicy) : new InProcessSchedules(ctx, this.retryPolicy);
    this.mailer = options.mailer ?? new ServerMailer(ctx);
    ctx.alertSinks.push(this.mailer.alertRaised);
    // On PostgreSQL a run lives in the database, so every server process answers for it.
    this.shards = ctx.queue instanceof PgBossQueue ? new PgFleetShards(ctx, ctx.queue.boss) : new MemoryFleetShards(ctx);
    this.hub.shardsHeld = (agentId) => this.shards.held(agentId);
    this.monitor = new Monitor(ctx, { checks: [() => checkOverduePlans(ctx), () => this.shards.sweep(), async () => void (await redispatchLost(ctx)), async () => void (await this.mailer.sendDueReports()), () => testDueDestinations(ctx, ctx.settings.destinationTestHours * 3600_000)], ...(options.monitorIntervalMs ? { intervalMs: options.monitorIntervalMs } : {}) });
  }

  /** Registers every feature's routes. */
  readonly plugin = async (app: FastifyInstance): Promise<void> => {
    const ctx = this.ctx;
    await app.register(agentRoutes, { ctx });
    await app.register(destinationRoutes, { ctx });
    await app.register(storageRoutes, { ctx });
    await app.register(planRoutes, { ctx, hooks: { checkSchedule, changed: (id: string) => this.schedules.planChanged(id), retryPolicy: this.retryPolicy } });
    await app.register(planPassphraseRoutes, { ctx });
    await app.register(jobRoutes, { ctx, retryPolicy: this.retryPolicy });
    await app.register(alertRoutes, { ctx });
    await app.register(reportRoutes, { ctx });
    await app.register(mailRoutes, { ctx, mailer: this.mailer });
    await app.register(eventRoutes, { ctx });
    await app.register(fleetShardRoutes, { ctx, shards: this.shards });
    await app.register(async (scope) => this.hub.routes(scope));
    await app.register(dashboardRoutes, { ctx, hub: this.hub });
  };

  async start(): Promise<void> {
    await this.ctx.queue.workTasks(RETENTION_QUEUE, async (data, signal) => {
      try {
        await applyServerRetention(this.ctx, String(data.jobId), signal, this.describeError);
      } catch (err) {
        // Left due: it runs again (another server's retry on pg-boss, the next start embedded).
        this.ctx.log.error({ err, job: data.jobId }, 'applying a plan retention failed');
        throw err;
      }
    });
    if (this.ctx.queue.name === 'memory') await requeuePending(this.ctx);
    this.hub.start();
    this.monitor.start();
    await this.schedules.start();
  }

  async stop(): Promise<void> {
    await this.schedules.stop();
    this.hub.stop();
    await this.monitor.stop();
    this.shards.stop();
    await this.mailer.stop();
  }
}
