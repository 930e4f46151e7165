// A run: this process's hold on a job, handed out by JobStore.acquirePlanRun. Everything the process
// reports goes through it, and every write checks that the job is still ours: if another process
// cancelled it or took it over, the write throws JobLostError and the run must stop.
import type { SQLInputValue } from 'node:sqlite';
import { JobLostError } from './job-errors.ts';
import type { EventInput, JobFields, JobStore, RunError } from './job-store.ts';
import { seconds } from './liveness.ts';
import { errorText } from './redact.ts';
import { classifyError, nextRetry, type RetryPlan } from './retry.ts';
import { JobStatus, LIVE_LIST } from './states.ts';
import { DestinationStatus, EventKind, type Job, type Progress, type ProgressCounters } from './types.ts';

export interface FailResult {
  /** The job after the failure: pending when a retry is scheduled, failed when it has none left. */
  readonly job: Job;
  readonly retry?: RetryPlan & { readonly at: number };
}

const COUNTERS = ['bytes_total', 'bytes_done', 'files_total', 'files_done', 'speed'] as const;
// Only the counters a report gives change: coalesce(NULL, x) keeps x.
const SET_COUNTERS = COUNTERS.map((c) => `${c} = coalesce(?, ${c})`).join(', ');

function counterParams(progress: Partial<ProgressCounters>): SQLInputValue[] {
  const { bytesTotal, bytesDone, filesTotal, filesDone, speed } = progress;
  return [bytesTotal, bytesDone, filesTotal, filesDone, speed].map((v) => v ?? null);
}

export class JobRun {
  readonly jobId: number;
  /** 1 for the job's first run, one more for each resume or retry; names the run's log file. */
  readonly run: number;
  private readonly store: JobStore;
  private readonly owner: string;

  constructor(store: JobStore, jobId: number, run: number, owner: string) {
    this.store = store;
    this.jobId = jobId;
    this.run = run;
    this.owner = owner;
  }

  get job(): Job {
    return this.store.mustJob(this.jobId);
  }

  /** Proves this process is alive (call every HEARTBEAT_INTERVAL_MS, paused or not) and records progress. */
  heartbeat(progress: Progress = {}): void {
    const { changes } = this.store.sql.run(
      `UPDATE jobs SET last_heartbeat = ?, stage = coalesce(?, stage), ${SET_COUNTERS}
       WHERE id = ? AND owner = ? AND status IN (${LIVE_LIST})`,
      this.store.now(),
      progress.stage ?? null,
      ...counterParams(progress),
      this.jobId,
      this.owner,
    );
    if (changes === 0) throw this.lost();
  }

  /** Progress of one destination; its first report marks it running. */
  updateDestination(destinationId: number, progress: Partial<ProgressCounters>): void {
    const now = this.store.now();
    const { changes } = this.store.sql.run(
      `UPDATE job_destinations
       SET status = CASE status WHEN 'pending' THEN 'running' ELSE status END,
           started_at = coalesce(started_at, ?), updated_at = ?, ${SET_COUNTERS}
       WHERE job_id = ? AND destination_id = ?
         AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = job_destinations.job_id AND owner = ? AND status IN (${LIVE_LIST}))`,
      now,
      now,
      ...counterParams(progress),
      this.jobId,
      destinationId,
      this.owner,
    );
    if (changes === 0) this.explainMissedWrite(destinationId);
  }

  /** A destination has committed its snapshot: it is done even if the others are still uploading. */
  completeDestination(destinationId: number): void {
    this.finishDestination(destinationId, DestinationStatus.completed);
  }

  /** A destination gave up; the others carry on. */
  failDestination(destinationId: number, err: unknown): void {
    this.finishDestination(destinationId, DestinationStatus.failed, err);
  }

  /** Something the user should see that does not stop the run (a file that could not be read). */
  warn(message: string, data?: unknown): void {
    this.store.sql.transaction(() => {
      this.owned();
      this.store.addEvent(this.jobId, { kind: EventKind.warning, message, data });
    });
  }

  pause(): Job {
    return this.move(JobStatus.paused, { kind: EventKind.paused, message: 'paused' });
  }

  resume(): Job {
    return this.move(JobStatus.running, { kind: EventKind.resumed, message: 'resumed after a pause' });
  }

  complete(): Job {
    return this.move(JobStatus.completed, { kind: EventKind.completed, message: 'completed' });
  }

  cancel(reason = 'cancelled by the user'): Job {
    return this.move(JobStatus.cancelled, { kind: EventKind.cancelled, message: reason }, {}, { message: reason });
  }

  /** The process is stopping (signal, shutdown) with the work unfinished: the next run of the plan resumes it. */
  interrupt(reason: string): Job {
    return this.store.sql.transaction(() => this.store.interrupt(this.owned(), reason));
  }

  /**
   * Records the failure of this attempt and, while the retry policy allows, schedules the next one:
   * the job goes back to pending with `nextAttemptAt` set (the daemon runs it from `dueJobs()`; a
   * one-shot CLI run may sleep `retry.delayMs` and acquire the plan again). Over the limit, or when the
   * caller knows waiting cannot help (`retryable: false`: a wrong passphrase, a missing source), it stays failed.
   */
  fail(err: unknown, options: { retryable?: boolean } = {}): FailResult {
    const message = errorText(err);
    const errorClass = classifyError(err);
    const { maxRetries } = this.store.retryPolicy;
    return this.store.sql.transaction(() => {
      const failed = this.store.changeStatus(
        this.owned(),
        JobStatus.failed,
        { kind: EventKind.failed, message, data: { errorClass, error: err } },
        { error: message },
        { message, errorClass },
      );
      if (options.retryable === false) {
        this.store.addEvent(failed.id, { kind: EventKind.gaveUp, message: 'not retried: this error does not go away by waiting; the job stays failed' });
        return { job: failed };
      }
      const retry = nextRetry(failed.retryCount, errorClass, this.store.retryPolicy);
      if (retry === undefined) {
        this.store.addEvent(failed.id, {
          kind: EventKind.gaveUp,
          message: `no retries left (${failed.retryCount} of ${maxRetries} used); the job stays failed`,
        });
        return { job: failed };
      }
      const at = this.store.now() + retry.delayMs;
      const job = this.store.changeStatus(
        failed,
        JobStatus.pending,
        {
          kind: EventKind.retryScheduled,
          message: `retry ${retry.attempt} of ${maxRetries} in ${seconds(retry.delayMs)} s (${errorClass} error)`,
          data: { ...retry, at },
        },
        { retry_count: retry.attempt, next_attempt_at: at },
      );
      return { job, retry: { ...retry, at } };
    });
  }

  private owned(): Job {
    return this.store.ownedJob(this.jobId, this.owner);
  }

  private move(to: JobStatus, event: EventInput, fields?: JobFields, runError?: RunError): Job {
    return this.store.sql.transaction(() => this.store.changeStatus(this.owned(), to, event, fields, runError));
  }

  private lost(): JobLostError {
    return new JobLostError(this.store.mustJob(this.jobId));
  }

  private finishDestination(destinationId: number, status: DestinationStatus, err?: unknown): void {
    const error = err === undefined ? null : errorText(err);
    this.store.sql.transaction(() => {
      this.owned();
      const now = this.store.now();
      const { changes } = this.store.sql.run(
        `UPDATE job_destinations SET status = ?, finished_at = ?, updated_at = ?, error = ?
         WHERE job_id = ? AND destination_id = ?`,
        status,
        now,
        now,
        error,
        this.jobId,
        destinationId,
      );
      if (changes === 0) this.explainMissedWrite(destinationId);
      const name = this.store.jobDestinations(this.jobId).find((d) => d.destinationId === destinationId)!.destinationName;
      this.store.addEvent(
        this.jobId,
        error === null
          ? { kind: EventKind.destinationCompleted, message: `destination ${name} completed` }
          : { kind: EventKind.destinationFailed, message: `destination ${name} failed: ${error}`, data: { destinationId, error: err } },
      );
    });
  }

  /** A write matched no row: either the job is no longer ours, or the destination is not part of it. */
  private explainMissedWrite(destinationId: number): never {
    this.store.sql.transaction(() => this.owned());
    throw new Error(`destination ${destinationId} is not part of job ${this.jobId}`);
  }
}
