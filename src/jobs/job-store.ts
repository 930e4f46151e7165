// The job store: plans and destinations as the jobs refer to them, and every change of a job's status.
// Each change runs in a BEGIN IMMEDIATE transaction that re-reads the job, checks the transition table
// and writes status, event and run record together, so concurrent coffer processes never act on a stale view.
import crypto from 'node:crypto';
import os from 'node:os';
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { openJobDatabaseIn } from './database.ts';
import { DEFAULT_STALE_AFTER_MS, processAlive, staleReason, type LivenessCheck } from './liveness.ts';
import { redact, redactString } from './redact.ts';
import { DEFAULT_RETRY_POLICY, type ErrorClass, type RetryPolicy } from './retry.ts';
import { JobRun } from './run.ts';
import { Sql } from './sql.ts';
import { JobLostError, PlanBusyError } from './job-errors.ts';
import { JobStatus, LIVE_LIST, assertTransition, isLive } from './states.ts';
import {
  EventKind,
  JOB_COLUMNS,
  JOB_DESTINATION_COLUMNS,
  JOB_DESTINATION_FROM,
  JOB_FROM,
  type Destination,
  type Job,
  type JobDestination,
  type JobEvent,
  type JobRunRecord,
  type Plan,
} from './types.ts';

export interface JobStoreOptions {
  /** Clock in milliseconds since the epoch; tests move it by hand. */
  readonly now?: () => number;
  /** This process's host name and pid, recorded on the jobs it runs. */
  readonly host?: string;
  readonly pid?: number;
  readonly isAlive?: (pid: number) => boolean;
  readonly staleAfterMs?: number;
  readonly retryPolicy?: RetryPolicy;
}

export interface EventInput {
  readonly kind: EventKind;
  readonly message: string;
  readonly data?: unknown;
}

/** Columns of `jobs` that a status change may set besides the status itself. */
type JobColumn =
  | 'owner'
  | 'pid'
  | 'host'
  | 'last_heartbeat'
  | 'started_at'
  | 'next_attempt_at'
  | 'error'
  | 'retry_count'
  | 'stale_after_ms';
export type JobFields = Partial<Record<JobColumn, SQLInputValue>>;

/** The error of a run that ended badly, for its record in job_runs. */
export interface RunError {
  readonly message: string;
  readonly errorClass?: ErrorClass;
}

/** Statuses after which a job's `finished_at` is set. */
const FINISHED: readonly JobStatus[] = [JobStatus.completed, JobStatus.failed, JobStatus.cancelled];

export class JobStore {
  readonly sql: Sql;
  readonly now: () => number;
  readonly host: string;
  readonly pid: number;
  readonly staleAfterMs: number;
  readonly retryPolicy: RetryPolicy;
  private readonly isAlive: (pid: number) => boolean;

  /** `db` must come from openJobDatabase (migrated, WAL, busy timeout); JobStore.open does that. */
  constructor(db: DatabaseSync, options: JobStoreOptions = {}) {
    this.sql = new Sql(db);
    this.now = options.now ?? Date.now;
    this.host = options.host ?? os.hostname();
    this.pid = options.pid ?? process.pid;
    this.isAlive = options.isAlive ?? processAlive;
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.retryPolicy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
  }

  /** Opens the job database of a data directory (see resolveDataDir), creating and upgrading it as needed. */
  static open(dataDir: string, options: JobStoreOptions = {}): JobStore {
    return new JobStore(openJobDatabaseIn(dataDir), options);
  }

  close(): void {
    this.sql.db.close();
  }

  // ── Plans and destinations ────────────────────────────────────────────────────────────────────────

  /** Records a plan and the destinations it writes to (by name), updating both if they changed. */
  ensurePlan(name: string, destinations: readonly { name: string; location: string }[]): Plan {
    return this.sql.transaction(() => {
      const now = this.now();
      this.sql.run('INSERT INTO plans (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', name, now);
      const planId = this.sql.get<{ id: number }>('SELECT id FROM plans WHERE name = ?', name)!.id;
      this.sql.run('DELETE FROM plan_destinations WHERE plan_id = ?', planId);
      for (const destination of destinations) {
        // A destination is often named by its location: neither may keep a credential typed into it.
        const destinationName = redactString(destination.name);
        this.sql.run(
          `INSERT INTO destinations (name, location, created_at) VALUES (?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET location = excluded.location`,
          destinationName,
          redactString(destination.location),
          now,
        );
        this.sql.run(
          'INSERT OR IGNORE INTO plan_destinations (plan_id, destination_id) SELECT ?, id FROM destinations WHERE name = ?',
          planId,
          destinationName,
        );
      }
      return this.plan(planId)!;
    });
  }

  plan(idOrName: number | string): Plan | undefined {
    const row = this.sql.get<{ id: number; name: string }>(
      `SELECT id, name FROM plans WHERE ${typeof idOrName === 'number' ? 'id' : 'name'} = ?`,
      idOrName,
    );
    if (row === undefined) return undefined;
    const destinations = this.sql.all<Destination>(
      `SELECT d.id, d.name, d.location FROM destinations d
       JOIN plan_destinations pd ON pd.destination_id = d.id WHERE pd.plan_id = ? ORDER BY d.name`,
      row.id,
    );
    return { ...row, destinations };
  }

  destinations(): Destination[] {
    return this.sql.all<Destination>('SELECT id, name, location FROM destinations ORDER BY name');
  }

  // ── Reading jobs ──────────────────────────────────────────────────────────────────────────────────

  job(id: number): Job | undefined {
    return this.sql.get<Job>(`SELECT ${JOB_COLUMNS} ${JOB_FROM} WHERE j.id = ?`, id);
  }

  /** Jobs matching a WHERE/ORDER tail over `jobs j` joined to `plans p` (shared by the status queries). */
  selectJobs(tail: string, ...params: SQLInputValue[]): Job[] {
    return this.sql.all<Job>(`SELECT ${JOB_COLUMNS} ${JOB_FROM} ${tail}`, ...params);
  }

  /** How many runs of a plan completed (the daemon's pruneEvery counts them). */
  completedRunsOf(planId: number): number {
    return this.sql.get<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE plan_id = ? AND status = 'completed'", planId)!.n;
  }

  jobDestinations(jobId: number): JobDestination[] {
    return this.sql.all<JobDestination>(
      `SELECT ${JOB_DESTINATION_COLUMNS} ${JOB_DESTINATION_FROM} WHERE jd.job_id = ? ORDER BY d.name`,
      jobId,
    );
  }

  events(jobId: number): JobEvent[] {
    return this.sql
      .all<JobEvent & { data: string | null }>(
        'SELECT id, job_id AS jobId, at, kind, message, data FROM job_events WHERE job_id = ? ORDER BY id',
        jobId,
      )
      .map((e) => ({ ...e, data: e.data === null ? undefined : JSON.parse(e.data) }));
  }

  runs(jobId: number): JobRunRecord[] {
    return this.sql.all<JobRunRecord>(
      `SELECT job_id AS jobId, run, started_at AS startedAt, finished_at AS finishedAt, outcome, error,
              error_class AS errorClass, pid, host
       FROM job_runs WHERE job_id = ? ORDER BY run`,
      jobId,
    );
  }

  // ── Queue ─────────────────────────────────────────────────────────────────────────────────────────

  /** A pending job for the plan; the plan's existing pending job if it has one (no duplicates in the queue). */
  enqueue(planId: number, options: { priority?: number; notBefore?: number } = {}): Job {
    return this.sql.transaction(() => {
      this.mustPlan(planId);
      const [queued] = this.selectJobs(`WHERE j.plan_id = ? AND j.status = 'pending' ORDER BY j.id`, planId);
      return queued ?? this.insertJob(planId, options.priority ?? 0, options.notBefore ?? null);
    });
  }

  /** Pending jobs whose retry delay (if any) is over, the one to run first first. */
  dueJobs(): Job[] {
    return this.selectJobs(
      `WHERE j.status = 'pending' AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= ?)
       ORDER BY j.priority DESC, coalesce(j.next_attempt_at, j.created_at), j.id`,
      this.now(),
    );
  }

  // ── Running a plan ────────────────────────────────────────────────────────────────────────────────

  /**
   * Makes this process the one running `planId` and returns the run. A live run of the plan whose owner
   * is dead or stale is marked interrupted first; a live-looking one blocks (PlanBusyError) unless
   * `force` is set and its process is not alive on this host (it is on another host, where we cannot
   * check it). The plan's newest pending or interrupted job is started or resumed (a due retry is
   * started early); older ones are cancelled as superseded; if there is none a new job is created.
   */
  acquirePlanRun(planId: number, options: { force?: boolean; staleAfterMs?: number } = {}): JobRun {
    return this.sql.transaction(() => {
      this.mustPlan(planId);
      const [live] = this.selectJobs(`WHERE j.plan_id = ? AND j.status IN (${LIVE_LIST})`, planId);
      if (live !== undefined) this.clearLiveRun(live, options.force ?? false);
      const [resumable, ...superseded] = this.selectJobs(
        `WHERE j.plan_id = ? AND j.status IN ('pending', 'interrupted') ORDER BY j.id DESC`,
        planId,
      );
      const job = resumable ?? this.insertJob(planId, 0, null);
      for (const old of superseded) {
        this.changeStatus(old, JobStatus.cancelled, { kind: EventKind.cancelled, message: `superseded by job ${job.id}` });
      }
      return this.startRun(job, options.staleAfterMs);
    });
  }

  /** Marks interrupted every live job whose owner is gone or silent; returns them. */
  detectStaleJobs(): Job[] {
    return this.sql.transaction(() =>
      this.selectJobs(`WHERE j.status IN (${LIVE_LIST}) ORDER BY j.id`).flatMap((job) => {
        const reason = staleReason(job, this.liveness());
        return reason === undefined ? [] : [this.interrupt(job, `stale: ${reason}`)];
      }),
    );
  }

  /**
   * Cancels a job. A live job run by another process becomes cancelled at once; that process finds out
   * at its next heartbeat (JobLostError) and stops.
   */
  cancelJob(jobId: number, reason = 'cancelled by the user'): Job {
    return this.sql.transaction(() =>
      this.changeStatus(this.mustJob(jobId), JobStatus.cancelled, { kind: EventKind.cancelled, message: reason }),
    );
  }

  /**
   * The process that was waiting out a pending job's retry delay stops (Ctrl-C, shutdown): without it
   * nothing would start the retry, so the job becomes interrupted, keeping the last attempt's error.
   * `coffer status` lists it as a problem and the next run of the plan resumes it.
   */
  stopWaiting(jobId: number, reason: string): Job {
    return this.sql.transaction(() => {
      const job = this.mustJob(jobId);
      const error = job.error ? `${reason}; the last attempt failed: ${job.error}` : reason;
      return this.changeStatus(job, JobStatus.interrupted, { kind: EventKind.interrupted, message: reason }, { error, next_attempt_at: null });
    });
  }

  /** Puts an interrupted or failed job back in the queue (a manual retry does not count against max retries). */
  requeueJob(jobId: number, options: { notBefore?: number } = {}): Job {
    return this.sql.transaction(() => {
      const job = this.mustJob(jobId);
      return this.changeStatus(
        job,
        JobStatus.pending,
        { kind: EventKind.requeued, message: `requeued after being ${job.status}` },
        { next_attempt_at: options.notBefore ?? null },
      );
    });
  }

  /**
   * Deletes the job history (jobs, their per-destination progress, runs and events) of one plan or of
   * all plans; plans, destinations and repositories are untouched. Refuses while a run is alive.
   * Returns the number of jobs deleted. Job ids are never reused, so old run logs cannot be mistaken
   * for a new job's.
   */
  reset(options: { planId?: number } = {}): number {
    return this.sql.transaction(() => {
      this.detectStaleJobs();
      const scope = options.planId === undefined ? '' : 'AND j.plan_id = ?';
      const scopeParams = options.planId === undefined ? [] : [options.planId];
      const [live] = this.selectJobs(`WHERE j.status IN (${LIVE_LIST}) ${scope}`, ...scopeParams);
      if (live !== undefined) {
        throw new Error(`plan ${live.planName} is running as job ${live.id} (pid ${live.pid}); stop it or let it finish before resetting`);
      }
      const where = options.planId === undefined ? '' : 'WHERE plan_id = ?';
      return Number(this.sql.run(`DELETE FROM jobs ${where}`, ...scopeParams).changes);
    });
  }

  // ── Used by JobRun ────────────────────────────────────────────────────────────────────────────────

  /** The job if `owner` still runs it; JobLostError otherwise. Call inside a transaction. */
  ownedJob(jobId: number, owner: string): Job {
    const row = this.sql.get<{ owner: string | null }>('SELECT owner FROM jobs WHERE id = ?', jobId);
    const job = this.mustJob(jobId);
    if (row?.owner !== owner || !isLive(job.status)) throw new JobLostError(job);
    return job;
  }

  /**
   * The one place a job's status changes: checks the transition table, writes the status with `fields`,
   * logs `event`, and keeps the bookkeeping that follows from the move (owner released and run record
   * closed when a live job stops being live, finished_at set or cleared). Call inside a transaction.
   */
  changeStatus(job: Job, to: JobStatus, event: EventInput, fields: JobFields = {}, runError?: RunError): Job {
    assertTransition(job.id, job.status, to);
    const now = this.now();
    const leavesRun = isLive(job.status) && !isLive(to);
    const all: Record<string, SQLInputValue> = {
      status: to,
      finished_at: FINISHED.includes(to) ? now : null,
      ...(leavesRun ? { owner: null } : {}),
      ...fields,
    };
    const entries = Object.entries(all);
    const { changes } = this.sql.run(
      `UPDATE jobs SET ${entries.map(([column]) => `${column} = ?`).join(', ')} WHERE id = ? AND status = ?`,
      ...entries.map(([, value]) => value),
      job.id,
      job.status,
    );
    // Cannot happen under BEGIN IMMEDIATE with a freshly read job; guards a caller that passed a stale one.
    if (changes === 0) throw new Error(`job ${job.id} is no longer ${job.status}; read it again`);
    if (leavesRun) {
      this.sql.run(
        'UPDATE job_runs SET finished_at = ?, outcome = ?, error = ?, error_class = ? WHERE job_id = ? AND finished_at IS NULL',
        now,
        to,
        runError?.message ?? null,
        runError?.errorClass ?? null,
        job.id,
      );
    }
    this.addEvent(job.id, event);
    return this.mustJob(job.id);
  }

  addEvent(jobId: number, event: EventInput): void {
    const data = event.data === undefined ? null : JSON.stringify(redact(event.data));
    this.sql.run(
      'INSERT INTO job_events (job_id, at, kind, message, data) VALUES (?, ?, ?, ?, ?)',
      jobId,
      this.now(),
      event.kind,
      redactString(event.message),
      data,
    );
  }

  /** The reason is kept as the job's error so that `coffer status` can say why it stopped. */
  interrupt(job: Job, reason: string): Job {
    return this.changeStatus(
      job,
      JobStatus.interrupted,
      { kind: EventKind.interrupted, message: reason, data: { pid: job.pid, host: job.host, lastHeartbeat: job.lastHeartbeat } },
      { error: reason },
      { message: reason },
    );
  }

  mustJob(id: number): Job {
    const job = this.job(id);
    if (job === undefined) throw new Error(`job ${id} does not exist; see coffer status for the jobs there are`);
    return job;
  }

  /** Whether the process recorded on `job` is known to be gone: on this host, with its pid no longer alive. */
  processGone(job: Pick<Job, 'pid' | 'host'>): boolean {
    return job.host === this.host && job.pid !== null && !this.isAlive(job.pid);
  }

  // ── Internals ─────────────────────────────────────────────────────────────────────────────────────

  private liveness(): LivenessCheck {
    return { now: this.now(), host: this.host, staleAfterMs: this.staleAfterMs, isAlive: this.isAlive };
  }

  private mustPlan(id: number): Plan {
    const plan = this.plan(id);
    if (plan === undefined) throw new Error(`plan ${id} does not exist`);
    return plan;
  }

  private clearLiveRun(live: Job, force: boolean): void {
    const reason = staleReason(live, this.liveness());
    if (reason !== undefined) {
      this.interrupt(live, `stale: ${reason}`);
    } else if (force && live.host !== this.host) {
      this.interrupt(live, `taken over with --force by pid ${this.pid} on ${this.host}`);
    } else {
      throw new PlanBusyError(live, this.now(), this.host);
    }
  }

  private insertJob(planId: number, priority: number, notBefore: number | null): Job {
    const { lastInsertRowid } = this.sql.run(
      "INSERT INTO jobs (plan_id, status, priority, created_at, next_attempt_at) VALUES (?, 'pending', ?, ?, ?)",
      planId,
      priority,
      this.now(),
      notBefore,
    );
    const id = Number(lastInsertRowid);
    this.addEvent(id, { kind: EventKind.created, message: 'created' });
    return this.mustJob(id);
  }

  /** `staleAfterMs`: how long this run may stay silent before any process takes it for dead (default: each checker's own). */
  private startRun(job: Job, staleAfterMs: number | undefined): JobRun {
    const now = this.now();
    const owner = crypto.randomUUID();
    const resuming = job.status === JobStatus.interrupted;
    const retry = job.retryCount > 0 ? ` (retry ${job.retryCount} of ${this.retryPolicy.maxRetries})` : '';
    this.changeStatus(
      job,
      JobStatus.running,
      {
        kind: resuming ? EventKind.resumed : EventKind.started,
        message: `${resuming ? 'resumed' : 'started'} by pid ${this.pid} on ${this.host}${retry}`,
      },
      { owner, pid: this.pid, host: this.host, last_heartbeat: now, started_at: job.startedAt ?? now, next_attempt_at: null, error: null, stale_after_ms: staleAfterMs ?? null },
    );
    const run = this.sql.get<{ last: number }>('SELECT coalesce(max(run), 0) AS last FROM job_runs WHERE job_id = ?', job.id)!.last + 1;
    this.sql.run(
      'INSERT INTO job_runs (job_id, run, started_at, pid, host) VALUES (?, ?, ?, ?, ?)',
      job.id,
      run,
      now,
      this.pid,
      this.host,
    );
    // Destinations that already committed stay done; the others start over (the engine resumes them).
    this.sql.run(
      `INSERT OR IGNORE INTO job_destinations (job_id, destination_id)
       SELECT ?, destination_id FROM plan_destinations WHERE plan_id = ?`,
      job.id,
      job.planId,
    );
    this.sql.run(
      "UPDATE job_destinations SET status = 'pending', error = NULL, finished_at = NULL WHERE job_id = ? AND status != 'completed'",
      job.id,
    );
    return new JobRun(this, job.id, run, owner);
  }
}
