// What `coffer jobs` shows: the daemon's jobs as plain data — running, paused, queued, waiting for a
// retry, and the ones that ended lately — with live progress (stage, speed, ETA, per destination) for
// those running. Also the JSON of `coffer jobs --json` (docs/JSON.md).
import type { BackupProgress } from '../engine/backup/progress.ts';
import type { Job, JobStore } from '../jobs/index.ts';
import type { TaskInfo } from './task-manager.ts';

export type JobState = 'running' | 'paused' | 'queued' | 'retrying' | 'completed' | 'failed' | 'cancelled' | 'interrupted';

export interface DestinationView {
  readonly location: string;
  readonly state: string;
  readonly bytesDone: number;
  readonly bytesQueued: number;
  readonly speed: number;
  readonly etaSeconds?: number;
  readonly error?: string;
}

export interface JobView {
  readonly id: number;
  readonly plan: string;
  readonly state: JobState;
  /** Why it was queued: schedule, overdue, manual, retry, resume. */
  readonly reason?: string;
  readonly priority: number;
  readonly stage?: string;
  readonly filesDone: number;
  readonly filesTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Whether the totals are final (the count of the sources is done). */
  readonly totalsKnown?: boolean;
  /** The totals are the parent snapshot's, an estimate (no count of the sources). */
  readonly totalsEstimated?: true;
  readonly speed: number;
  readonly etaSeconds?: number;
  readonly currentFile?: string;
  readonly queuedAt?: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly nextAttemptAt?: number;
  readonly retryCount: number;
  readonly error?: string;
  readonly destinations?: readonly DestinationView[];
}

export interface DaemonStatus {
  readonly type: 'daemon-status';
  readonly pid: number;
  readonly version: string;
  readonly startedAt: number;
  readonly now: number;
  readonly paused: boolean;
  readonly concurrency: number;
  readonly configFile: string;
  readonly dataDir: string;
  readonly jobs: readonly JobView[];
  readonly schedules: readonly { readonly plan: string; readonly nextRun: number }[];
}

/** Ended jobs shown: those of the last day, at most this many. */
const RECENT = 10;
const RECENT_MS = 24 * 3_600_000;

function counters(job: Job): Pick<JobView, 'filesDone' | 'filesTotal' | 'bytesDone' | 'bytesTotal' | 'speed' | 'retryCount'> {
  return { filesDone: job.filesDone, filesTotal: job.filesTotal, bytesDone: job.bytesDone, bytesTotal: job.bytesTotal, speed: job.speed, retryCount: job.retryCount };
}

function live(progress: BackupProgress): Partial<JobView> {
  return {
    stage: progress.stage,
    filesDone: progress.filesDone,
    filesTotal: progress.filesTotal,
    bytesDone: progress.bytesDone,
    bytesTotal: progress.bytesTotal,
    totalsKnown: progress.totalsKnown,
    ...(progress.totalsEstimated ? { totalsEstimated: true as const } : {}),
    speed: progress.bytesPerSecond,
    ...(progress.etaSeconds !== undefined ? { etaSeconds: progress.etaSeconds } : {}),
    ...(progress.currentFile ? { currentFile: progress.currentFile } : {}),
    destinations: progress.destinations.map((d) => ({
      location: d.location,
      state: d.state,
      bytesDone: d.bytesDone,
      bytesQueued: d.bytesQueued,
      speed: d.speed,
      ...(d.etaSeconds !== undefined ? { etaSeconds: d.etaSeconds } : {}),
      ...(d.error ? { error: d.error } : {}),
    })),
  };
}

/** The daemon's jobs: its tasks (with live progress where a backup runs), retries waiting, recent ends. */
export function jobViews(tasks: readonly TaskInfo[], progress: ReadonlyMap<number, { progress(): BackupProgress }>, jobs: JobStore, now: number): JobView[] {
  const views: JobView[] = [];
  const shown = new Set<number>();
  for (const task of tasks) {
    const id = Number(task.id);
    const job = jobs.job(id);
    if (!job) continue;
    shown.add(id);
    const running = progress.get(id);
    const state: JobState = task.state === 'queued' ? 'queued' : task.paused || job.status === 'paused' ? 'paused' : 'running';
    views.push({
      id,
      plan: task.key,
      state,
      reason: task.reason,
      priority: task.priority,
      ...(job.stage && task.state === 'running' ? { stage: job.stage } : {}),
      ...counters(job),
      queuedAt: task.queuedAt,
      ...(task.startedAt !== undefined ? { startedAt: task.startedAt } : {}),
      ...(running ? live(running.progress()) : {}),
    });
  }
  for (const job of jobs.selectJobs(`WHERE j.status = 'pending' ORDER BY coalesce(j.next_attempt_at, j.created_at)`)) {
    if (shown.has(job.id)) continue;
    shown.add(job.id);
    views.push({
      id: job.id,
      plan: job.planName,
      state: job.nextAttemptAt !== null && job.nextAttemptAt > now ? 'retrying' : 'queued',
      priority: job.priority,
      ...counters(job),
      ...(job.nextAttemptAt !== null ? { nextAttemptAt: job.nextAttemptAt } : {}),
      ...(job.error ? { error: job.error } : {}),
    });
  }
  const recent = jobs.selectJobs(
    `WHERE j.status IN ('completed', 'failed', 'cancelled', 'interrupted') AND coalesce(j.finished_at, j.last_heartbeat, j.created_at) >= ? ORDER BY j.id DESC LIMIT ${RECENT}`,
    now - RECENT_MS,
  );
  for (const job of recent) {
    if (shown.has(job.id)) continue;
    views.push({
      id: job.id,
      plan: job.planName,
      state: job.status as JobState,
      priority: job.priority,
      ...(job.stage ? { stage: job.stage } : {}),
      ...counters(job),
      ...(job.startedAt !== null ? { startedAt: job.startedAt } : {}),
      ...(job.finishedAt !== null ? { finishedAt: job.finishedAt } : {}),
      ...(job.error ? { error: job.error } : {}),
    });
  }
  return views;
}
