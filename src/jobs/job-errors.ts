// The errors of job ownership: a plan already run by a live process, and a run whose job another
// process has cancelled, taken over or interrupted.
import { seconds } from './liveness.ts';
import { JobStatus, isLive } from './states.ts';
import type { Job } from './types.ts';

/** Thrown by acquirePlanRun when another run of the plan is alive. */
export class PlanBusyError extends Error {
  override name = 'PlanBusyError';
  readonly job: Job;

  constructor(job: Job, now: number, host: string) {
    const heartbeat = `heartbeat ${seconds(now - (job.lastHeartbeat ?? job.startedAt ?? now))}s ago`;
    const local = job.host === host;
    const who = local ? `pid ${job.pid}` : `pid ${job.pid} on host ${job.host}`;
    const hint = local
      ? `its process is alive on this host: wait for it or stop process ${job.pid} first (--force only takes over a run whose process is gone)`
      : 'use --force to take over a stale run';
    super(`plan ${job.planName} is already running as job ${job.id} (${who}, ${heartbeat}); ${hint}`);
    this.job = job;
  }
}

/** Thrown to a run whose job was cancelled, taken over or marked interrupted by another process: stop working on it. */
export class JobLostError extends Error {
  override name = 'JobLostError';
  readonly job: Job;

  constructor(job: Job) {
    super(
      job.status === JobStatus.cancelled
        ? `job ${job.id} was cancelled`
        : isLive(job.status)
          ? `job ${job.id} was taken over by pid ${job.pid} on ${job.host}`
          : `job ${job.id} is no longer run by this process: it is ${job.status}`,
    );
    this.job = job;
  }
}
