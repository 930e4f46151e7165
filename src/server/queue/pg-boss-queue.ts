// The queue on PostgreSQL: pg-boss. A queue per agent; items are claimed with SKIP LOCKED, so two
// servers never hand the same item out.
import { PgBoss } from 'pg-boss';
import { agentQueueName, type JobQueue, type QueueItem } from './queue.ts';

export class PgBossQueue implements JobQueue {
  readonly name = 'pg-boss' as const;
  /** Shared with the schedules (pg-boss's distributed cron). */
  readonly boss: PgBoss;
  private readonly known = new Set<string>();

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

  async ensureQueue(name: string): Promise<void> {
    if (this.known.has(name)) return;
    // Items are handed to an agent at once; a retry is a new item of ours, so pg-boss's own retries are off.
    await this.boss.createQueue(name, { retryLimit: 0, expireInSeconds: 3600 });
    this.known.add(name);
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
    await this.boss.stop({ graceful: true, timeout: 5000 });
  }
}
