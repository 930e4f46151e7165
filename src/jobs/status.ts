// What `coffer status` shows: per destination the last success and what is running there now, the live
// jobs with their progress, the queue, and the failures nobody has fixed yet. Read-only: call
// JobStore.detectStaleJobs() first so that a dead run shows as interrupted rather than running.
import type { JobStore } from './job-store.ts';
import { LIVE_LIST } from './states.ts';
import type { Destination, Job, JobDestination, JobRunRecord } from './types.ts';

export interface LastSuccess {
  readonly jobId: number;
  readonly planName: string;
  readonly finishedAt: number;
  readonly ageMs: number;
}

export interface DestinationReport {
  readonly destination: Destination;
  /** The newest job that committed a snapshot to this destination (whatever the other destinations did). */
  readonly lastSuccess?: LastSuccess;
  /** This destination's share of the live jobs. */
  readonly active: readonly JobDestination[];
}

export interface LiveJob {
  readonly job: Job;
  readonly destinations: readonly JobDestination[];
  readonly heartbeatAgeMs: number;
}

export interface ProblemJob {
  /** Failed (retries used up) or interrupted; `job.error` says why. */
  readonly job: Job;
  /** Every attempt with its own error. */
  readonly runs: readonly JobRunRecord[];
}

/** A pending job, and whether anything is left to start it. */
export interface QueuedJob extends Job {
  /**
   * The process that scheduled this retry and was waiting to run it is gone (killed during the wait), so
   * nothing starts the job when it is due: the next run of its plan will.
   */
  readonly orphaned: boolean;
}

export interface StatusReport {
  readonly now: number;
  readonly destinations: readonly DestinationReport[];
  readonly live: readonly LiveJob[];
  /** Pending jobs, due ones first; a scheduled retry has `nextAttemptAt` and the last `error`. */
  readonly queued: readonly QueuedJob[];
  readonly problems: readonly ProblemJob[];
}

export function statusReport(store: JobStore, options: { problemLimit?: number } = {}): StatusReport {
  const now = store.now();
  const live = store.selectJobs(`WHERE j.status IN (${LIVE_LIST}) ORDER BY j.id`).map((job) => ({
    job,
    destinations: store.jobDestinations(job.id),
    heartbeatAgeMs: now - (job.lastHeartbeat ?? job.startedAt ?? now),
  }));
  return {
    now,
    destinations: destinationReports(store, now, live),
    live,
    queued: store
      .selectJobs(`WHERE j.status = 'pending' ORDER BY coalesce(j.next_attempt_at, 0), j.priority DESC, j.id`)
      .map((job) => ({ ...job, orphaned: job.nextAttemptAt !== null && store.processGone(job) })),
    // A failure that a later run of the same plan completed is history, not a problem; of a plan's
    // failures only the newest is one (the older ones are the same trouble, or trouble that went away).
    problems: store
      .selectJobs(
        `WHERE j.status IN ('failed', 'interrupted')
           AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.plan_id = j.plan_id AND k.id > j.id AND k.status IN ('completed', 'failed', 'interrupted'))
         ORDER BY j.id DESC LIMIT ?`,
        options.problemLimit ?? 20,
      )
      .map((job) => ({ job, runs: store.runs(job.id) })),
  };
}

function destinationReports(store: JobStore, now: number, live: readonly LiveJob[]): DestinationReport[] {
  // SQLite takes the bare columns of a max() aggregate from the row that holds the maximum.
  const successes = store.sql.all<LastSuccess & { destinationId: number }>(
    `SELECT jd.destination_id AS destinationId, jd.job_id AS jobId, p.name AS planName, max(jd.finished_at) AS finishedAt
     FROM job_destinations jd JOIN jobs j ON j.id = jd.job_id JOIN plans p ON p.id = j.plan_id
     WHERE jd.status = 'completed' GROUP BY jd.destination_id`,
  );
  const active = live.flatMap((l) => l.destinations);
  return store.destinations().map((destination) => {
    const success = successes.find((s) => s.destinationId === destination.id);
    return {
      destination,
      ...(success === undefined
        ? {}
        : { lastSuccess: { jobId: success.jobId, planName: success.planName, finishedAt: success.finishedAt, ageMs: now - success.finishedAt } }),
      active: active.filter((d) => d.destinationId === destination.id),
    };
  });
}
