// Connects a backup run to the job database: the job it belongs to, a heartbeat with progress every
// few seconds (per destination too), each destination's outcome, warnings, pauses, the end of the run,
// and a log file per run. `coffer backup` and the daemon's job runner both record through it; an agent
// of the fleet server records the same things through its own RunRecorder.
import crypto from 'node:crypto';
import path from 'node:path';
import type { BackupProgress } from '../engine/backup/progress.ts';
import type { CommitOutcome } from '../engine/backup/pack-sink.ts';
import { JobLostError, JobStore, RunLog, redactString, runLogDir, type FailResult, type JobRun, type JobStoreOptions, type Plan, type RetryPolicy } from '../jobs/index.ts';
import type { RetryConfig } from '../config/config-file.ts';

export const PROGRESS_INTERVAL_MS = 5_000;

export function retryPolicyOf(config: RetryConfig, maxRetries?: number): RetryPolicy {
  return {
    maxRetries: maxRetries ?? config.max,
    delaysMs: { other: config.delays.map((s) => s * 1000), network: config.networkDelays.map((s) => s * 1000) },
  };
}

/** A plan name for a backup started without --plan: the first path's name and a hash of what and where. */
export function adHocPlanName(host: string, repos: readonly string[], paths: readonly string[]): string {
  const digest = crypto.hash('sha256', JSON.stringify([host, [...repos].sort(), [...paths].sort()]), 'hex').slice(0, 8);
  const base = path.basename(paths[0] ?? 'backup').replace(/[^\w.-]/g, '_') || 'root';
  return `${base}-${digest}`;
}

export class TrackedJob {
  readonly store: JobStore;
  readonly plan: Plan;
  private readonly dataDir: string;
  run!: JobRun;
  log!: RunLog;

  constructor(dataDir: string, planName: string, repos: readonly string[], retryPolicy: RetryPolicy, options: Omit<JobStoreOptions, 'retryPolicy'> = {}) {
    this.dataDir = dataDir;
    this.store = JobStore.open(dataDir, { ...options, retryPolicy });
    this.store.detectStaleJobs();
    this.plan = this.store.ensurePlan(
      planName,
      repos.map((location) => ({ name: location, location })),
    );
  }

  /** Clears this plan's job history (never repository data). */
  reset(): number {
    return this.store.reset({ planId: this.plan.id });
  }

  /** Starts or resumes the plan's job; a live run of the same plan stops us with PlanBusyError. */
  acquire(force: boolean, staleAfterMs?: number): { resumed: boolean } {
    this.run = this.store.acquirePlanRun(this.plan.id, { force, ...(staleAfterMs !== undefined ? { staleAfterMs } : {}) });
    this.log = RunLog.open(runLogDir(this.dataDir), this.run.jobId, this.run.run);
    const resumed = this.run.run > 1;
    this.log.info(resumed ? 'job resumed' : 'job started', { plan: this.plan.name, pid: process.pid });
    return { resumed };
  }

  private destinationId(location: string): number | undefined {
    const name = redactString(location);
    return this.plan.destinations.find((d) => d.name === name)?.id;
  }

  /** Reports progress every PROGRESS_INTERVAL_MS; calls `lost` if another process took the job away. */
  follow(backup: { progress(): BackupProgress }, lost: (err: JobLostError) => void): () => void {
    const beat = (last = false): void => {
      const p = backup.progress();
      try {
        this.run.heartbeat({ stage: p.stage, bytesTotal: p.bytesTotal, bytesDone: p.bytesDone, filesTotal: p.filesTotal, filesDone: p.filesDone, speed: p.bytesPerSecond });
        for (const d of p.destinations) {
          const id = this.destinationId(d.location);
          if (id !== undefined && d.state !== 'detached' && d.state !== 'done') this.run.updateDestination(id, { bytesDone: d.bytesDone, bytesTotal: d.bytesDone + d.bytesQueued, speed: d.speed });
        }
      } catch (err) {
        // After the run the job may be over already (completed by the caller): nothing is lost then.
        if (!(err instanceof JobLostError)) throw err;
        if (!last) lost(err);
      }
    };
    beat();
    const timer = setInterval(beat, PROGRESS_INTERVAL_MS);
    // A last report, so the job's counters are those of the end of the run.
    return () => {
      clearInterval(timer);
      beat(true);
    };
  }

  committed(location: string): void {
    const id = this.destinationId(location);
    if (id !== undefined) this.run.completeDestination(id);
    this.log.info('destination committed', { location });
  }

  finished(outcomes: readonly CommitOutcome[], snapshotId: string): void {
    for (const o of outcomes) {
      const id = this.destinationId(o.location);
      if (!o.committed && id !== undefined) this.run.failDestination(id, new Error(o.error));
    }
    this.log.info('backup completed', { snapshot: snapshotId, destinations: outcomes });
    this.run.complete();
  }

  warn(message: string): void {
    this.run.warn(message);
    this.log.warn(message);
  }

  failed(err: Error, retryable: boolean): FailResult {
    this.log.error('backup failed', { error: err.message });
    return this.run.fail(err, { retryable });
  }

  interrupted(reason: string): void {
    this.log.warn('backup interrupted', { reason });
    this.run.interrupt(reason);
  }

  cancelled(reason: string): void {
    this.log.warn('backup cancelled', { reason });
    this.run.cancel(reason);
  }

  /** The run's pause gate closed or opened: the job shows paused (it keeps its heartbeat) or running again. */
  paused(paused: boolean): void {
    this.log.info(paused ? 'paused' : 'resumed');
    if (paused) this.run.pause();
    else this.run.resume();
  }

  /** How many runs of this plan completed, this one included once finished (the daemon's pruneEvery counts them). */
  completedRuns(): number {
    return this.store.completedRunsOf(this.plan.id);
  }

  /** This process stops while waiting to retry: nothing else would start the retry (JobStore.stopWaiting). */
  stoppedWaiting(reason: string): void {
    this.log.warn('retry abandoned', { reason });
    this.store.stopWaiting(this.run.jobId, reason);
  }

  close(): void {
    this.log?.close();
    this.store.close();
  }
}
