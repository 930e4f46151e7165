// The coordinator's side of a scaled-out fleet run: the shard queue is the server's (its job engine),
// reached through the agent API. Queuing hands the shards to the server for the plan's workers; the
// outcomes come from following the run until none is left to run. What the coordinator last heard is
// its job's progress.
import type { ShardOutcome } from '../engine/scale-out/scale-out.ts';
import type { ShardJson } from '../engine/scale-out/shard-plan.ts';
import type { EnqueuedRun, ShardQueue, ShardRunStatus } from '../scale-out/shard-queue.ts';
import { ServerError, type ServerClient } from './client.ts';
import type { FleetShardStatus } from './protocol.ts';

/** A server unreachable for this long in a row fails the run (the job's retry plans again). */
const UNREACHABLE_MS = 120_000;

interface RunAnswer {
  readonly status: FleetShardStatus;
  readonly outcomes?: ShardOutcome[];
}

export class ServerShardQueue implements ShardQueue {
  private readonly client: ServerClient;
  private readonly jobId: string;
  private readonly pollMs: number;
  private stopped = false;
  /** The run's status as last heard. */
  latest: FleetShardStatus | undefined;

  constructor(client: ServerClient, jobId: string, pollMs = 1000) {
    this.client = client;
    this.jobId = jobId;
    this.pollMs = pollMs;
  }

  async enqueue(shards: readonly ShardJson[], parent?: string): Promise<EnqueuedRun> {
    const { run } = await this.client.request<{ run: string }>('POST', '/api/agent/shards/runs', { jobId: this.jobId, shards, ...(parent ? { parent } : {}) });
    const outcomes = this.follow(run);
    outcomes.catch(() => {});
    return { run, outcomes };
  }

  private async ask(run: string): Promise<RunAnswer> {
    const answer = await this.client.request<RunAnswer>('GET', `/api/agent/shards/runs/${encodeURIComponent(run)}`);
    this.latest = answer.status;
    return answer;
  }

  private async follow(run: string): Promise<ShardOutcome[]> {
    let failingSince: number | undefined;
    for (;;) {
      if (this.stopped) throw new Error('the shard queue was stopped');
      try {
        const answer = await this.ask(run);
        failingSince = undefined;
        if (answer.outcomes) return answer.outcomes;
      } catch (err) {
        // The embedded server restarted (its runs live in its process) or refused: nothing to wait for.
        if (err instanceof ServerError && err.status >= 400 && err.status < 500) throw new ServerError(err.status, `the server no longer follows this scaled-out run (${err.message}); it is planned again on the next attempt`);
        failingSince ??= Date.now();
        if (Date.now() - failingSince > UNREACHABLE_MS) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  async status(run: string): Promise<ShardRunStatus> {
    const { status } = await this.ask(run);
    return {
      waiting: status.waiting,
      running: status.running.map((r) => ({ index: r.index, worker: r.hostname, files: r.files, bytes: r.bytes, progress: { filesDone: r.filesDone, bytesDone: r.bytesDone }, attempt: r.attempt, silentMs: r.silentMs })),
      done: status.done,
      failed: status.failed,
    };
  }

  stop(): void {
    this.stopped = true;
  }
}
