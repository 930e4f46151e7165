// The job runner: one run of one plan, start to end. It takes the plan's job (resuming an interrupted
// one), runs the before-hook, gets storage credentials, streams the plan's database dumps and commands
// beside its paths into a backup (a plan with `workers: N`: N worker processes on this machine,
// scale-out/local-run.ts), records progress, pauses and the outcome in the job database, and
// applies the plan's retention after a successful backup (forget, and prune every pruneEvery-th run), and
// runs the success/failure/after hooks. It decides nothing about when to run (the scheduler and the task
// manager do) nor whom to tell (the notification rules do, from the report it returns and its events).
//
// Pause and cancel arrive through the TaskControl the task manager hands it: the gate reaches into the
// backup engine (docs/DAEMON.md); an abort with TaskStopped('cancelled') cancels the job, with
// TaskStopped('shutdown') marks it interrupted so that the next start resumes it.
//
// Interface:
//   runPlan(planName, context, control) → Promise<RunReport>   never rejects for a failed backup
//   RunnerContext: what the caller provides (stores, passphrase, config, data directory, events)
//   RunReport: what happened, for logs, notifications and `coffer jobs`
import os from 'node:os';
import { durationMs } from '../config/automation.ts';
import type { Config, PlanConfig } from '../config/config-file.ts';
import { BackupRun, type BackupResult } from '../engine/backup/backup.ts';
import { parsePriorityRule } from '../engine/backup/priority.ts';
import type { BackupProgress } from '../engine/backup/progress.ts';
import type { Selection } from '../engine/backup/selection.ts';
import type { StreamSource } from '../engine/backup/stream-source.ts';
import { DEFAULT_SPOOL_LIMITS } from '../engine/spool.ts';
import { JobLostError, PlanBusyError, runLogDir, type RetryPolicy } from '../jobs/index.ts';
import { openWithKeyHints } from '../jobs/key-hints.ts';
import type { Repository } from '../repo/repository.ts';
import { runLogFile } from '../jobs/run-log.ts';
import { redactString } from '../jobs/redact.ts';
import type { Store } from '../store/store.ts';
import type { StoreSettings } from '../store/configured-store.ts';
import { LocalScaledBackup } from '../scale-out/local-run.ts';
import { ScaleOutError } from '../engine/scale-out/scale-out.ts';
import { planStoreSettings } from './plan-stores.ts';
import { count } from '../units.ts';
import { PlanHooks } from './plan-hooks.ts';
import { applyPlanRetention, pruneDue, type RetentionReport } from './plan-retention.ts';
import { TrackedJob } from './job-tracking.ts';
import { streamSources } from './sources.ts';
import { TaskStopped, type TaskControl } from './task-manager.ts';

export type RunOutcome = 'completed' | 'failed' | 'retrying' | 'cancelled' | 'interrupted' | 'busy';

export interface RunReport {
  readonly plan: string;
  /** Absent when the plan was busy (another process runs it). */
  readonly jobId?: number;
  readonly outcome: RunOutcome;
  /** Why it failed, was cancelled or was skipped: one line, free of secrets. */
  readonly error?: string;
  readonly snapshotId?: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** Bytes of new packs, files read, files that could not be read. */
  readonly bytesAdded?: number;
  readonly filesNew?: number;
  readonly warnings?: number;
  /** Packs an interrupted run had stored without an index, found and reused. */
  readonly adoptedPacks?: number;
  /** Per destination: committed or why not. */
  readonly destinations?: readonly { readonly location: string; readonly committed: boolean; readonly error?: string }[];
  /** A retry is scheduled: which one and when. */
  readonly retry?: { readonly attempt: number; readonly at: number };
  /** The plan's retention after the run: snapshots forgotten, whether it pruned, or why it failed (the run still succeeded). */
  readonly retention?: RetentionReport;
}

export interface RunnerLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface RunnerContext {
  readonly dataDir: string;
  readonly config: Config;
  readonly retryPolicy: RetryPolicy;
  /** Opens one destination of a plan with the plan's settings (plan-stores.ts), its warnings reported. */
  openStore(location: string, settings: StoreSettings): Store;
  /** The plan's repository passphrase (its passwordFile or passwordCommand, or the process's COFFER_PASSWORD). */
  passphrase(plan: PlanConfig): Promise<string>;
  /** What the plan backs up from disk: its paths (with filesFrom) and what to leave out (the CLI's rules, shared). */
  planSources(plan: PlanConfig): { paths: string[]; selection: Selection };
  /** One line for the user, and whether waiting could help (the CLI's rules, shared). */
  describeError(err: unknown): string;
  isRetryable(err: unknown): boolean;
  readonly log: RunnerLog;
  /** The clock of the job records (the daemon's, which tests may move). */
  readonly now?: () => number;
  /** A run started (its job is taken) / the backup engine is running, for live progress. */
  onStarted?(plan: string, jobId: number): void;
  onProgress?(jobId: number, source: { progress(): BackupProgress } | undefined): void;
}

/** One run of a plan. Resolves with what happened; a failed backup is an outcome, not an exception. */
export async function runPlan(planName: string, ctx: RunnerContext, control: TaskControl): Promise<RunReport> {
  const startedAt = Date.now();
  const plan = ctx.config.plans[planName];
  if (!plan) return { plan: planName, outcome: 'failed', error: `no plan ${planName} in the configuration`, startedAt, finishedAt: Date.now() };
  const job = new TrackedJob(ctx.dataDir, planName, plan.repos, ctx.retryPolicy, ctx.now ? { now: ctx.now } : {});
  try {
    try {
      job.acquire(false, durationMs(plan.staleAfter));
    } catch (err) {
      if (err instanceof PlanBusyError) return { plan: planName, outcome: 'busy', error: err.message, startedAt, finishedAt: Date.now() };
      throw err;
    }
    return await new PlanRun(planName, plan, ctx, control, job, startedAt).run();
  } finally {
    job.close();
  }
}

class PlanRun {
  private readonly lost = new AbortController();
  private readonly hooks: PlanHooks;
  private readonly planName: string;
  private readonly plan: PlanConfig;
  private readonly ctx: RunnerContext;
  private readonly control: TaskControl;
  private readonly job: TrackedJob;
  private readonly startedAt: number;

  constructor(planName: string, plan: PlanConfig, ctx: RunnerContext, control: TaskControl, job: TrackedJob, startedAt: number) {
    this.planName = planName;
    this.plan = plan;
    this.ctx = ctx;
    this.control = control;
    this.job = job;
    this.startedAt = startedAt;
    this.hooks = new PlanHooks({
      hooks: plan.hooks,
      context: { plan: planName, jobId: job.run.jobId, run: job.run.run, repos: plan.repos, logFile: runLogFile(runLogDir(ctx.dataDir), job.run.jobId, job.run.run) },
      log: job.log,
      onEndHookFailed: (err) => ctx.log.warn(`job ${job.run.jobId} (plan ${planName}): ${err.message}`),
    });
  }

  private get jobId(): number {
    return this.job.run.jobId;
  }

  async run(): Promise<RunReport> {
    this.ctx.onStarted?.(this.planName, this.jobId);
    const stopFollowingGate = this.control.gate.onChange((paused) => {
      try {
        this.job.paused(paused);
      } catch (err) {
        if (err instanceof JobLostError) this.lost.abort(err);
        else this.ctx.log.error(`job ${this.jobId}: could not record the pause: ${(err as Error).message}`);
      }
    });
    const signal = AbortSignal.any([this.control.signal, this.lost.signal]);
    let report: RunReport;
    try {
      await this.hooks.before(signal);
      const result = await this.backup(signal);
      this.job.finished(result.destinations, result.snapshotId);
      const s = result.snapshot.summary;
      report = this.report('completed', {
        snapshotId: result.snapshotId,
        bytesAdded: s.bytesAdded,
        filesNew: s.filesNew + s.filesChanged,
        warnings: s.warnings,
        adoptedPacks: result.adoptedPacks,
        destinations: result.destinations,
      });
      if (this.plan.retention) report = { ...report, retention: await this.applyRetention(result.snapshot, signal) };
    } catch (err) {
      report = this.ended(err);
    } finally {
      stopFollowingGate();
      this.ctx.onProgress?.(this.jobId, undefined);
    }
    await this.hooks.end(report.outcome, { ...(report.error ? { error: report.error } : {}), ...(report.snapshotId ? { snapshotId: report.snapshotId } : {}) });
    return report;
  }

  /** Records how a run that threw ended: cancelled, interrupted (shutdown), lost to another process, or failed. */
  private ended(err: unknown): RunReport {
    const stop = this.control.signal.aborted ? this.control.signal.reason : undefined;
    try {
      if (stop instanceof TaskStopped && stop.kind === 'cancelled') {
        this.job.cancelled('cancelled by the user');
        return this.report('cancelled', { error: 'cancelled by the user' });
      }
      if (stop instanceof TaskStopped) {
        this.job.interrupted(stop.message);
        return this.report('interrupted', { error: stop.message });
      }
      if (this.lost.signal.aborted) {
        const reason = (this.lost.signal.reason as Error).message;
        return this.report(/cancelled/.test(reason) ? 'cancelled' : 'interrupted', { error: reason });
      }
      const message = this.ctx.describeError(err);
      const failed = this.job.failed(err as Error, this.ctx.isRetryable(err));
      if (failed.retry) return this.report('retrying', { error: message, retry: { attempt: failed.retry.attempt, at: failed.retry.at } });
      return this.report('failed', { error: message });
    } catch (recordErr) {
      // The job was taken away meanwhile (cancelled from another process): nothing more to record.
      if (recordErr instanceof JobLostError) return this.report('cancelled', { error: recordErr.message });
      throw recordErr;
    }
  }

  private report(outcome: RunOutcome, fields: Partial<RunReport>): RunReport {
    return { plan: this.planName, jobId: this.jobId, outcome, startedAt: this.startedAt, finishedAt: Date.now(), ...fields, ...(fields.error ? { error: redactString(fields.error) } : {}) };
  }

  /** The plan's retention, and a prune every pruneEvery-th successful run (plan-retention.ts). */
  private applyRetention(made: { readonly host: string; readonly paths: readonly string[] }, signal: AbortSignal): Promise<RetentionReport> {
    return applyPlanRetention(() => this.openRepository(signal, (message) => this.job.log.warn(message)), {
      retention: this.plan.retention!,
      made,
      prune: pruneDue(this.plan.pruneEvery, this.job.completedRuns()),
      signal,
      log: this.job.log,
      describeError: (err) => this.ctx.describeError(err),
    });
  }

  /**
   * What opening the plan's repository takes: its store settings (credentials asked afresh; the job's
   * stop ends the stores' waits for bandwidth) and its passphrase.
   */
  private async access(signal: AbortSignal): Promise<RepositoryAccess> {
    return { stores: { ...(await planStoreSettings(this.plan, signal)), signal }, passphrase: await this.ctx.passphrase(this.plan) };
  }

  /**
   * The plan's repository on all its destinations, with its credentials and the key that worked last
   * time first; `warn` records what was skipped (in the job while it runs, in its log after).
   */
  private async openRepository(signal: AbortSignal, warn: (message: string) => void, access?: RepositoryAccess): Promise<Repository> {
    const { stores: settings, passphrase } = access ?? (await this.access(signal));
    const stores = this.plan.repos.map((location) => this.ctx.openStore(location, settings));
    const repo = await openWithKeyHints(stores, passphrase, this.ctx.dataDir, (name, reason) => warn(`skipping ${name}: ${reason}`)).catch(async (err) => {
      await Promise.all(stores.map((s) => s.close()));
      throw err;
    });
    repo.onDamaged = (name, reason) => warn(`skipping ${name}: ${reason}; run coffer check`);
    for (const u of repo.unavailable) warn(`replica ${u.store.location} is left out: ${u.error.message}`);
    return repo;
  }

  private async backup(signal: AbortSignal): Promise<BackupResult> {
    const plan = this.plan;
    const streams: StreamSource[] = streamSources(plan.sources ?? []);
    const workers = plan.workers ?? 1;
    if (workers > 1 && streams.length > 0) throw new ScaleOutError(`plan ${this.planName} has workers: ${workers}, which backs up paths only; back its sources (dumps, commands) up with another plan`);
    const access = await this.access(signal);
    const repo = await this.openRepository(signal, (message) => this.job.warn(message), access);
    try {
      const { paths, selection } = this.ctx.planSources(plan);
      if (workers > 1) return await this.scaledBackup(repo, access, paths, selection, signal);
      await repo.loadIndex();
      const run = new BackupRun(repo, {
        paths,
        selection,
        oneFileSystem: plan.oneFileSystem,
        tags: plan.tags,
        host: plan.host ?? os.hostname(),
        priorities: plan.priority.flatMap((rule) => parsePriorityRule(rule) ?? []),
        spool: DEFAULT_SPOOL_LIMITS,
        streams,
        signal,
        pause: this.control.gate,
      });
      run.onWarning = (w) => this.job.warn(`${w.path}: ${w.message}`);
      run.onCommitted = (location) => this.job.committed(location);
      this.job.log.info('backing up', { paths, selection, sources: streams.map((s) => s.name), repos: plan.repos });
      return await this.tracked(run, () => run.run());
    } finally {
      await repo.close();
    }
  }

  /** A plan with `workers: N`: N worker processes on this machine back it up into one snapshot (scale-out/local-run.ts). */
  private async scaledBackup(repo: Repository, access: RepositoryAccess, paths: string[], selection: Selection, signal: AbortSignal): Promise<BackupResult> {
    const plan = this.plan;
    const run = new LocalScaledBackup(repo, {
      locations: plan.repos,
      stores: access.stores,
      paths,
      workers: plan.workers!,
      selection,
      ...(plan.oneFileSystem !== undefined ? { oneFileSystem: plan.oneFileSystem } : {}),
      tags: plan.tags,
      host: plan.host ?? os.hostname(),
      allowPartial: plan.allowPartial ?? false,
      signal,
      pause: this.control.gate,
      onQueued: (shards, started) => {
        this.job.log.info('shards queued', { shards: shards.shards.length, workers: started });
        this.ctx.log.info(`job ${this.jobId} (plan ${this.planName}): ${count(shards.shards.length, 'shard')} queued for ${count(started, 'worker process', 'worker processes')}`);
      },
    });
    this.job.log.info('backing up with worker processes', { paths, selection, workers: plan.workers, repos: plan.repos });
    const result = await this.tracked(run, () => run.run());
    // The workers' warnings arrive with their shards' results; the merged snapshot is committed at once everywhere it went.
    for (const w of result.warnings) this.job.warn(`${w.path}: ${w.message}`);
    for (const d of result.destinations) if (d.committed) this.job.committed(d.location);
    return result;
  }

  /** Runs `work` with its progress in the job database and the daemon's status. */
  private async tracked<T>(source: { progress(): BackupProgress }, work: () => Promise<T>): Promise<T> {
    this.ctx.onProgress?.(this.jobId, source);
    const stopTracking = this.job.follow(source, (err) => this.lost.abort(err));
    try {
      return await work();
    } finally {
      stopTracking();
    }
  }
}

/** What opening a plan's repository takes; a scaled-out run hands the same to its workers. */
interface RepositoryAccess {
  readonly stores: StoreSettings;
  readonly passphrase: string;
}
