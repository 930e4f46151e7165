// The queue of the embedded server: in memory, in this one process. Nothing is lost by keeping it in
// memory: at start-up the server re-sends every pending job, and every retention of its own left due,
// from the jobs table (requeuePending in jobs/lifecycle.ts).
import crypto from 'node:crypto';
import type { JobQueue, QueueItem, TaskHandler } from './queue.ts';

interface Entry {
  readonly id: string;
  readonly jobId: string;
  readonly due: number;
}

export class MemoryQueue implements JobQueue {
  readonly name = 'memory' as const;
  private readonly queues = new Map<string, Entry[]>();
  private readonly now: () => number;
  private readonly tasks = new Map<string, { handler?: TaskHandler; waiting: Record<string, unknown>[]; running?: Promise<void> }>();
  private readonly stopping = new AbortController();

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  async start(): Promise<void> {}

  async send(agentId: string, jobId: string, startAfterMs?: number): Promise<void> {
    const list = this.queues.get(agentId) ?? [];
    if (list.some((e) => e.jobId === jobId)) return;
    list.push({ id: crypto.randomUUID(), jobId, due: startAfterMs ?? 0 });
    this.queues.set(agentId, list);
  }

  async fetch(agentId: string, limit: number): Promise<QueueItem[]> {
    const list = this.queues.get(agentId);
    if (!list || limit <= 0) return [];
    const now = this.now();
    const taken: QueueItem[] = [];
    for (let i = 0; i < list.length && taken.length < limit; ) {
      const entry = list[i]!;
      if (entry.due <= now) {
        taken.push({ id: entry.id, jobId: entry.jobId });
        list.splice(i, 1);
      } else i++;
    }
    return taken;
  }

  async isQueued(agentId: string, jobId: string): Promise<boolean> {
    return this.queues.get(agentId)?.some((e) => e.jobId === jobId) ?? false;
  }

  async complete(): Promise<void> {}

  async sendTask(queue: string, data: Record<string, unknown>): Promise<void> {
    this.taskQueue(queue).waiting.push(data);
    this.drain(queue);
  }

  async workTasks(queue: string, handler: TaskHandler): Promise<void> {
    this.taskQueue(queue).handler = handler;
    this.drain(queue);
  }

  private taskQueue(queue: string) {
    let q = this.tasks.get(queue);
    if (!q) this.tasks.set(queue, (q = { waiting: [] }));
    return q;
  }

  /** Runs the queue's tasks one after another; a failing task is reported by its handler, not retried. */
  private drain(queue: string): void {
    const q = this.taskQueue(queue);
    if (q.running || !q.handler || q.waiting.length === 0 || this.stopping.signal.aborted) return;
    const handler = q.handler;
    const run = async (): Promise<void> => {
      for (let data = q.waiting.shift(); data && !this.stopping.signal.aborted; data = q.waiting.shift()) await handler(data, this.stopping.signal).catch(() => {});
    };
    q.running = run().finally(() => {
      q.running = undefined;
      this.drain(queue);
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all([...this.tasks.values()].map((q) => q.running));
  }
}
