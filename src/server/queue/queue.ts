// The job engine behind dispatch: one interface, two implementations. Embedded (SQLite) servers keep
// the queue in process; with PostgreSQL it is pg-boss, so several server processes share it and each
// item is fetched by exactly one of them. Items only say "this job wants to run on this agent"; the job
// itself (status, progress, history) lives in the jobs table.

export interface QueueItem {
  readonly id: string;
  readonly jobId: string;
}

/** Work a server does itself (a plan's retention on its S3 destinations): each task runs on one server. */
export type TaskHandler = (data: Record<string, unknown>, signal: AbortSignal) => Promise<void>;

export interface JobQueue {
  readonly name: 'memory' | 'pg-boss';
  start(): Promise<void>;
  /** Asks for `jobId` to run on `agentId`, not before `startAfterMs` (epoch ms) when given. */
  send(agentId: string, jobId: string, startAfterMs?: number): Promise<void>;
  /** Claims up to `limit` due items of the agent; across all servers an item is claimed once. */
  fetch(agentId: string, limit: number): Promise<QueueItem[]>;
  /** Whether an item for the job waits in the agent's queue (due or not yet; a claimed one no longer counts). */
  isQueued(agentId: string, jobId: string): Promise<boolean>;
  /** Marks claimed items as handled. */
  complete(agentId: string, itemIds: readonly string[]): Promise<void>;
  /** Queues a task for whichever server works `queue`; across all servers it is run once (again only if a server died running it). */
  sendTask(queue: string, data: Record<string, unknown>): Promise<void>;
  /** Runs the tasks of `queue` on this server, one at a time, until stop (which aborts the running one's signal and waits for it). */
  workTasks(queue: string, handler: TaskHandler): Promise<void>;
  stop(): Promise<void>;
}

export function agentQueueName(agentId: string): string {
  return `agent.${agentId}`;
}
