// The queue on PostgreSQL: pg-boss. A queue per agent; items are claimed with SKIP LOCKED, so two
// servers never hand the same item out.
import { PgBoss } from 'pg-boss';
import { agentQueueName, type JobQueue, type QueueItem, type TaskHandler } from './queue.ts';

/**
 * Server tasks (a plan's retention) may run for hours (a prune); pg-boss's heartbeat, sent while the
 * handler runs, tells a live server from a dead one, whose task goes to another server.
 */
const TASK_QUEUE = { retryLimit: 2, retryDelay: 30, expireInSeconds: 24 * 3600, heartbeatSeconds: 30 };

export class PgBossQueue implements JobQueue {
  readonly name = 'pg-boss' as const;
  /** Shared with the schedules (pg-boss's distributed cron). */
  readonly boss: PgBoss;
  private readonly known = new Set<string>();
  private readonly stopping = new AbortController();

  constructor(url: string, options: { cronIntervalSeconds?: number } = {}) {
    this.boss = new PgBoss({
      connectionString: url,
      max: 4,
      ...(options.cronIntervalSeconds ? { cronWorkerIntervalSeconds: options.cronIntervalSeconds, cronMonitorIntervalSeconds: options.cronIntervalSeconds } : {}),
    });
    // pg-boss reports maintenance hiccups as 'error' events; unhandled, they would end the process.
    this.boss.on('error', () => {});
  }

  async start(): Promise<void> {
    await this.boss.start();
  }

  async ensureQueue(name: string, options: { retryLimit: number; expireInSeconds: number; retryDelay?: number; heartbeatSeconds?: number } = { retryLimit: 0, expireInSeconds: 3600 }): Promise<void> {
    if (this.known.has(name)) return;
    // By default (agents' queues) items are handed to an agent at once; a retry is a new item of ours, so pg-boss's own retries are off.
    await this.boss.createQueue(name, options);
    this.known.add(name);
  }

  async sendTask(queue: string, data: Record<string, unknown>): Promise<void> {
    await this.ensureQueue(queue, TASK_QUEUE);
    await this.boss.send(queue, data);
  }

  async workTasks(queue: string, handler: TaskHandler): Promise<void> {
    await this.ensureQueue(queue, TASK_QUEUE);
    await this.boss.work<Record<string, unknown>>(queue, { pollingIntervalSeconds: 1, batchSize: 1 }, async (jobs) => {
      for (const job of jobs) await handler(job.data, AbortSignal.any([job.signal, this.stopping.signal]));
    });
  }

  async send(agentId: string, jobId: string, startAfterMs?: number): Promise<void> {
    const queue = agentQueueName(agentId);
    await this.ensureQueue(queue);
    await this.boss.send(queue, { jobId }, startAfterMs ? { startAfter: new Date(startAfterMs) } : {});
  }

  async fetch(agentId: string, limit: number): Promise<QueueItem[]> {
    if (limit <= 0) return [];
    const queue = agentQueueName(agentId);
    await this.ensureQueue(queue);
    const jobs = await this.boss.fetch<{ jobId: string }>(queue, { batchSize: limit });
    return jobs.map((j) => ({ id: j.id, jobId: j.data.jobId }));
  }

  async isQueued(agentId: string, jobId: string): Promise<boolean> {
    const queue = agentQueueName(agentId);
    await this.ensureQueue(queue);
    // queued: created or retry, not yet fetched.
    return (await this.boss.findJobs(queue, { data: { jobId }, queued: true, limit: 1 })).length > 0;
  }

  async complete(agentId: string, itemIds: readonly string[]): Promise<void> {
    if (itemIds.length > 0) await this.boss.complete(agentQueueName(agentId), [...itemIds]);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.boss.stop({ graceful: true, timeout: 5000 });
  }
}
