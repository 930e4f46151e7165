// The rows of the job database as the rest of coffer sees them. The SELECT lists here alias every
// column to these camelCase names, so a row is the interface itself. Times are milliseconds since the epoch.
import type { ErrorClass } from './retry.ts';
import type { JobStatus } from './states.ts';

export interface Destination {
  readonly id: number;
  readonly name: string;
  /** Where it is, with any credentials cut out. */
  readonly location: string;
}

export interface Plan {
  readonly id: number;
  readonly name: string;
  readonly destinations: readonly Destination[];
}

export interface ProgressCounters {
  readonly bytesTotal: number;
  readonly bytesDone: number;
  readonly filesTotal: number;
  readonly filesDone: number;
  /** Bytes per second, as measured by whoever reports the progress. */
  readonly speed: number;
}

export interface Job extends ProgressCounters {
  readonly id: number;
  readonly planId: number;
  readonly planName: string;
  readonly status: JobStatus;
  /** Higher runs first among due pending jobs. */
  readonly priority: number;
  /** What the run is doing now: 'scanning', 'uploading', … (free text from the engine). */
  readonly stage: string | null;
  readonly createdAt: number;
  /** First start; kept across resumes and retries. */
  readonly startedAt: number | null;
  /** Set when the job becomes completed, failed or cancelled. */
  readonly finishedAt: number | null;
  readonly lastHeartbeat: number | null;
  /** When a pending job may start: the end of its retry delay. */
  readonly nextAttemptAt: number | null;
  readonly error: string | null;
  /** Retries used so far (0 on the first attempt). */
  readonly retryCount: number;
  /** Process and host of the current (or last) run. */
  readonly pid: number | null;
  readonly host: string | null;
  /** How long the current run may go without a heartbeat before it counts as stale; null: the store's default. */
  readonly staleAfterMs: number | null;
}

export const JOB_COLUMNS = `
  j.id, j.plan_id AS planId, p.name AS planName, j.status, j.priority, j.stage,
  j.bytes_total AS bytesTotal, j.bytes_done AS bytesDone, j.files_total AS filesTotal,
  j.files_done AS filesDone, j.speed, j.created_at AS createdAt, j.started_at AS startedAt,
  j.finished_at AS finishedAt, j.last_heartbeat AS lastHeartbeat, j.next_attempt_at AS nextAttemptAt,
  j.error, j.retry_count AS retryCount, j.pid, j.host, j.stale_after_ms AS staleAfterMs`;
export const JOB_FROM = 'FROM jobs j JOIN plans p ON p.id = j.plan_id';

export const DestinationStatus = {
  pending: 'pending',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
} as const;
export type DestinationStatus = (typeof DestinationStatus)[keyof typeof DestinationStatus];

/** One destination's share of a job: each destination runs at its own pace and finishes on its own. */
export interface JobDestination extends ProgressCounters {
  readonly jobId: number;
  readonly destinationId: number;
  readonly destinationName: string;
  readonly status: DestinationStatus;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly updatedAt: number | null;
  readonly error: string | null;
}

export const JOB_DESTINATION_COLUMNS = `
  jd.job_id AS jobId, jd.destination_id AS destinationId, d.name AS destinationName, jd.status,
  jd.bytes_total AS bytesTotal, jd.bytes_done AS bytesDone, jd.files_total AS filesTotal,
  jd.files_done AS filesDone, jd.speed, jd.started_at AS startedAt, jd.finished_at AS finishedAt,
  jd.updated_at AS updatedAt, jd.error`;
export const JOB_DESTINATION_FROM = 'FROM job_destinations jd JOIN destinations d ON d.id = jd.destination_id';

export const EventKind = {
  created: 'created',
  started: 'started',
  resumed: 'resumed',
  paused: 'paused',
  completed: 'completed',
  failed: 'failed',
  retryScheduled: 'retry-scheduled',
  gaveUp: 'gave-up',
  cancelled: 'cancelled',
  interrupted: 'interrupted',
  requeued: 'requeued',
  destinationCompleted: 'destination-completed',
  destinationFailed: 'destination-failed',
  warning: 'warning',
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

export interface JobEvent {
  readonly id: number;
  readonly jobId: number;
  readonly at: number;
  readonly kind: EventKind;
  readonly message: string;
  /** Parsed JSON details, already redacted when written. */
  readonly data: unknown;
}

/** One process's go at a job: the first run, a resume after an interruption, or a retry. */
export interface JobRunRecord {
  readonly jobId: number;
  readonly run: number;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly outcome: 'completed' | 'failed' | 'cancelled' | 'interrupted' | null;
  readonly error: string | null;
  readonly errorClass: ErrorClass | null;
  readonly pid: number;
  readonly host: string;
}

/** A progress report: only the fields given are changed. */
export interface Progress extends Partial<ProgressCounters> {
  readonly stage?: string;
}
