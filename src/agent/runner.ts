// Runs the jobs the server hands this agent, with the same engine as `coffer backup` and `coffer
// restore`: opens the plan's destinations (through pre-signed URLs for server-held S3 destinations,
// directly otherwise), streams progress and log lines every second, and reports the outcome.
//
// What runs when is the daemon's task manager (daemon/task-manager.ts), as for `coffer daemon`: at most
// the agent's capacity at once, one job per plan at a time (a job of a plan whose previous job is still
// stopping here waits for it), pause and resume in place through the task's gate (the engine finishes
// the pack or upload in hand and waits: progress, upload state and the before-hook's work are kept),
// cancel and shutdown through its signal. A paused job keeps its slot, and the server counts it so
// (agents/hub.ts): the agent is never handed more than its capacity, paused jobs included.
import os from 'node:os';
import { BackupRun } from '../engine/backup/backup.ts';
import { RestoreRun } from '../engine/restore/restore.ts';
import { SnapshotView } from '../engine/snapshot-view.ts';
import type { HookLog } from '../daemon/hooks.ts';
import { PlanHooks } from '../daemon/plan-hooks.ts';
import { applyPlanRetention, type MadeSnapshot, type RetentionLog, type RetentionReport } from '../daemon/plan-retention.ts';
import { streamSources } from '../daemon/sources.ts';
import type { PlanRetention } from '../engine/forget.ts';
import { defaultFileName } from '../config/automation.ts';
import { TaskManager, TaskStopped, UnknownTaskError, type TaskControl, type TaskEvent } from '../daemon/task-manager.ts';
import { classifyError, ErrorClass } from '../jobs/index.ts';
import { completeCreation, initRepository, Repository } from '../repo/repository.ts';
import { resolveSnapshot } from '../repo/snapshot-ref.ts';
import { isRemoteLocation } from '../store/locations.ts';
import { openStore } from '../store/open-store.ts';
import { PresignedStore } from '../store/presigned.ts';
import { RetryStore } from '../store/retry.ts';
import type { Store } from '../store/store.ts';
import { ThrottleStore, TokenBucket } from '../store/throttle.ts';
import type { ServerClient } from './client.ts';
import { stoppedWhilePaused } from './restart-on-pause.ts';
import { scaledJob, scaledProgress, type BackupExecution } from './scaled-run.ts';
import type { AgentLimits, BackupParams, DestinationRef, FromAgent, JobAssignment, JobOutcome, Limits, LogLine, RestoreParams } from './protocol.ts';

const PROGRESS_MS = 1000;

/** A job's log lines, as the server gets them. */
type LogTo = (level: LogLine['level'], message: string) => void;

/** The run log the daemon's steps write to (hooks' output, retention), as the job's log lines. */
function runLog(log: LogTo): HookLog & RetentionLog {
  const line = (message: string, fields?: Record<string, unknown>): string => (fields ? `${message} ${JSON.stringify(fields)}` : message);
  return {
    info: (m: string, f?: Record<string, unknown>) => log('info', line(m, f)),
    warn: (m: string, f?: Record<string, unknown>) => log('warn', line(m, f)),
    error: (m: string, f?: Record<string, unknown>) => log('error', line(m, f)),
  };
}

export interface RunnerOptions {
  readonly client: ServerClient;
  /** Jobs at once: the agent's capacity. */
  readonly capacity: number;
  readonly passphrase: () => Promise<string>;
  readonly send: (message: FromAgent) => void;
  readonly spoolDir?: string;
  readonly workers?: number;
  /** The one-line message for a failure and whether a retry may help: the CLI's rules, handed down as the daemon's runner gets them. */
  readonly describeError: (err: unknown) => string;
  readonly isRetryable: (err: unknown) => boolean;
}

/** How long a control that came before its job waits for it: the job follows within moments, or never. */
const EARLY_CONTROL_MS = 60_000;

/** One job per plan at a time; a restore is a job of its own. */
const taskKey = (job: JobAssignment): string => (job.kind === 'backup' ? `plan ${job.params.planId}` : `restore ${job.id}`);

interface Buckets {
  readonly upload: TokenBucket;
  readonly download: TokenBucket;
}

const buckets = (limits: Limits): Buckets => ({ upload: new TokenBucket(limits.upload), download: new TokenBucket(limits.download) });

function setRates(to: Buckets, limits: Limits): void {
  to.upload.setRate(limits.upload);
  to.download.setRate(limits.download);
}

export class JobRunner {
  private readonly options: RunnerOptions;
  private readonly tasks: TaskManager<JobAssignment>;
  /**
   * Bandwidth limits live as long as the agent and every job's stores go through them, limited or not,
   * so a limit set or changed on the server applies at once to the transfers of running jobs.
   */
  private readonly agentBuckets = buckets({});
  /** Each destination's own limits (by destination id), shared by this agent's jobs writing to it. */
  private readonly destinationBuckets = new Map<string, Buckets>();
  /**
   * Pauses and cancels that came before their job: the server sends a job down the socket once it has
   * claimed it, and a control through its event log, which may be sent first. Applied when the job
   * arrives; forgotten after a while (a late control for a job that has already ended here).
   */
  private readonly early = new Map<string, { action: 'pause' | 'cancel'; at: number }>();

  constructor(options: RunnerOptions) {
    this.options = options;
    this.tasks = new TaskManager<JobAssignment>({ run: (task, control) => this.run(task.payload!, control), concurrency: options.capacity, sameKey: 'wait', onEvent: (event) => this.tell(event) });
  }

  /** Slots for more jobs: the capacity less the jobs held here, running, paused (a paused job keeps its slot) or waiting. */
  get free(): number {
    return Math.max(0, this.tasks.limit - this.tasks.list().length);
  }

  /** The jobs held here, as the heartbeat lists them for the server. */
  get ids(): string[] {
    return this.tasks.list().map((t) => t.id);
  }

  /** The limits as the server has them now: the agent's own and its destinations'. */
  setLimits(limits: AgentLimits): void {
    setRates(this.agentBuckets, limits.limits);
    for (const [id, own] of Object.entries(limits.destinations ?? {})) {
      const known = this.destinationBuckets.get(id);
      if (known) setRates(known, own);
      else this.destinationBuckets.set(id, buckets(own));
    }
  }

  /**
   * Takes a job the server handed out. One already held here (handed out again after the server took
   * this agent for gone, say) is not started twice: the run in hand reports it, and the server hears
   * again that it is paused if it is (handing it out made it running there).
   */
  start(job: JobAssignment): void {
    try {
      const submitted = this.tasks.submit({ id: job.id, key: taskKey(job), reason: job.attempt > 1 ? 'retry' : 'manual', payload: job });
      if (!submitted.accepted && submitted.existing.paused) this.options.send({ type: 'paused', jobId: job.id });
      const early = this.early.get(job.id);
      this.early.delete(job.id);
      if (submitted.accepted && early && Date.now() - early.at < EARLY_CONTROL_MS) this.control(job.id, early.action);
    } catch {
      // Handed out while the agent stops (submit refuses nothing else): the server resumes it when the agent is back.
      this.options.send({ type: 'finished', jobId: job.id, outcome: 'interrupted', reason: 'the agent is shutting down' });
    }
  }

  /** Pause, resume or cancel from the server; a job no longer held here has already reported its end. */
  control(jobId: string, action: 'pause' | 'resume' | 'cancel'): void {
    try {
      if (action === 'pause') this.tasks.pause(jobId);
      else if (action === 'resume') this.tasks.resume(jobId);
      else this.tasks.cancel(jobId);
    } catch (err) {
      if (!(err instanceof UnknownTaskError)) throw err;
      if (action === 'resume') this.early.delete(jobId);
      else this.rememberEarly(jobId, action);
    }
  }

  private rememberEarly(jobId: string, action: 'pause' | 'cancel'): void {
    const now = Date.now();
    for (const [id, { at }] of this.early) if (now - at >= EARLY_CONTROL_MS) this.early.delete(id);
    this.early.set(jobId, { action, at: now });
  }

  /** The task manager's word to the server: a run tells its own end, a job cancelled before it started does not. */
  private tell(event: TaskEvent): void {
    if (event.type === 'paused' || event.type === 'resumed') this.options.send({ type: event.type, jobId: event.task.id });
    else if (event.type === 'cancelled' && event.task.state === 'queued') this.options.send({ type: 'finished', jobId: event.task.id, outcome: 'cancelled' });
  }

  /** Stops every job (the agent is shutting down): each is interrupted, and the server resumes it when the agent is back. */
  async stopAll(): Promise<void> {
    const waiting = this.tasks.list().filter((t) => t.state === 'queued');
    await this.tasks.shutdown('the agent is shutting down');
    for (const t of waiting) this.options.send({ type: 'finished', jobId: t.id, outcome: 'interrupted', reason: 'the agent is shutting down' });
  }

  /**
   * A destination's store as jobs open it: pre-signed for server-held S3, with bandwidth limits and
   * retries. `signal` (the job's) ends a wait for bandwidth at once, so a cancel or shutdown is not held
   * up by an object's share of a low limit (a pause lets the transfer in hand finish, and holds the next).
   */
  openDestination(ref: DestinationRef, signal?: AbortSignal): Store {
    let store: Store =
      ref.kind === 's3'
        ? new PresignedStore(`${ref.name} (${ref.location}, write-only)`, this.options.client.broker(ref.id))
        : openStore(ref.location);
    // The ref's limits are as of the job's creation: the server's newer word (setLimits) wins.
    let own = this.destinationBuckets.get(ref.id);
    if (!own) this.destinationBuckets.set(ref.id, (own = buckets(ref.limits)));
    for (const limit of [own, this.agentBuckets]) store = new ThrottleStore(store, { uploadBucket: limit.upload, downloadBucket: limit.download, ...(signal ? { signal } : {}) });
    if (ref.kind === 's3' || isRemoteLocation(ref.location)) store = new RetryStore(store);
    return store;
  }

  private async run(job: JobAssignment, control: TaskControl): Promise<void> {
    const lines: LogLine[] = [];
    const log = (level: LogLine['level'], message: string): void => void lines.push({ at: Date.now(), level, message });
    const flush = (): void => {
      if (lines.length > 0) this.options.send({ type: 'log', jobId: job.id, lines: lines.splice(0) });
    };
    let outcome: JobOutcome;
    try {
      outcome = job.kind === 'backup' ? await this.backup(job.id, job.attempt, job.params, control, log, flush) : await this.restore(job.id, job.params, control, log, flush);
    } catch (err) {
      const stop = stopOf(control);
      if (stop) {
        outcome = stop.kind === 'cancelled' ? { outcome: 'cancelled' } : { outcome: 'interrupted', reason: stop.message };
      } else {
        const message = this.options.describeError(err);
        log('error', message);
        outcome = { outcome: 'failed', error: message, retryable: this.options.isRetryable(err), network: classifyError(err) === ErrorClass.network };
      }
    }
    flush();
    this.options.send({ type: 'finished', jobId: job.id, ...outcome });
  }

  private async openRepository(refs: readonly DestinationRef[], stores: Store[], log: LogTo, create: boolean): Promise<Repository> {
    const passphrase = await this.options.passphrase();
    if (create) {
      // An unreachable destination counts as neither: Repository.open leaves it out and says why.
      const found = await Promise.all(stores.map((s) => s.stat('config').catch(() => 'unreachable' as const)));
      const holder = stores.find((_, i) => found[i] !== undefined && found[i] !== 'unreachable');
      if (!holder) {
        log('info', `creating the repository on ${refs.map((r) => r.name).join(', ')}`);
        await initRepository(stores, passphrase);
      } else {
        // A pause or a crash while the repository was being created left some destinations without it.
        const lacking = refs.filter((_, i) => found[i] === undefined);
        if (lacking.length > 0) {
          log('info', `completing the repository's creation on ${lacking.map((r) => r.name).join(', ')}`);
          await completeCreation(holder, stores.filter((_, i) => found[i] === undefined));
        }
      }
    }
    const repo = await Repository.open(stores, passphrase, { onDamaged: (name, reason) => log('warn', `skipping ${name}: ${reason}`) });
    for (const u of repo.unavailable) log('warn', `destination ${u.store.location} is left out: ${u.error.message}`);
    await repo.loadIndex();
    return repo;
  }

  /**
   * A backup with the plan's hooks around it, in the daemon's order (daemon/plan-hooks.ts), and the
   * plan's retention after it.
   */
  private async backup(jobId: string, attempt: number, params: BackupParams, control: TaskControl, log: LogTo, flush: () => void): Promise<JobOutcome> {
    const hooks = new PlanHooks({ hooks: params.hooks, context: { plan: params.planName, jobId, run: attempt, repos: params.destinations.map((d) => d.location) }, log: runLog(log) });
    let outcome: JobOutcome;
    let made: MadeSnapshot;
    try {
      await hooks.before(control.signal);
      ({ outcome, made } = await this.backupRun(jobId, params, control, log, flush));
    } catch (err) {
      const stop = stopOf(control);
      await hooks.end(stop ? (stop.kind === 'cancelled' ? 'cancelled' : 'interrupted') : 'failed', stop ? {} : { error: this.options.describeError(err) });
      throw err;
    }
    if (params.retention && outcome.outcome === 'completed') {
      const retention = await this.retention(params, params.retention, made, control.signal, log);
      if (retention) outcome = { ...outcome, retention };
    }
    await hooks.end('completed', outcome.outcome === 'completed' && outcome.snapshotId ? { snapshotId: outcome.snapshotId } : {});
    return outcome;
  }

  /**
   * The plan's retention after a successful run, as the daemon applies it (plan-retention.ts). Only
   * where this agent may delete: a server-held destination is write-only for it, by design. When the
   * server holds the plan's passphrase it applies the retention there itself, and this agent on the
   * destinations it opens itself (undefined when there are none).
   */
  private async retention(params: BackupParams, retention: PlanRetention, made: MadeSnapshot, signal: AbortSignal, log: LogTo): Promise<RetentionReport | undefined> {
    const writeOnly = params.destinations.filter((d) => d.kind === 's3');
    const own = params.destinations.filter((d) => d.kind !== 's3');
    const names = writeOnly.map((d) => d.name).join(', ');
    const are = writeOnly.length === 1 ? 'is' : 'are';
    if (writeOnly.length > 0 && !params.retentionByServer) {
      const error = `not applied: ${names} ${are} write-only for agents (the server holds the storage credentials); give the server the plan's passphrase so it applies it, or apply it with coffer forget --prune where both the credentials and the passphrase are`;
      log('error', `retention ${error}`);
      return { forgotten: 0, pruned: false, error };
    }
    if (writeOnly.length > 0) log('info', `retention on ${names} is applied by the server, which holds the plan's passphrase (${are === 'is' ? 'it is' : 'they are'} write-only for agents)`);
    if (own.length === 0) return undefined;
    return applyPlanRetention(
      async () => {
        const stores = own.map((d) => this.openDestination(d, signal));
        return this.openRepository(own, stores, log, false).catch(async (err) => {
          await Promise.all(stores.map((s) => s.close()));
          throw err;
        });
      },
      {
        retention,
        made,
        prune: params.prune === true,
        signal,
        log: runLog(log),
        describeError: this.options.describeError,
      },
    );
  }

  /** The backup itself; with its outcome, the host and paths of the snapshot it made (its plan's retention keys on them). */
  private async backupRun(jobId: string, params: BackupParams, control: TaskControl, log: LogTo, flush: () => void): Promise<{ outcome: JobOutcome; made: MadeSnapshot }> {
    const stores = params.destinations.map((d) => this.openDestination(d, control.signal));
    const idOf = new Map(stores.map((s, i) => [s.location, params.destinations[i]!.id]));
    let repo: Repository;
    try {
      repo = await this.openRepository(params.destinations, stores, log, true);
    } catch (err) {
      await Promise.all(stores.map((s) => s.close()));
      throw err;
    }
    try {
      const scaleOut = params.scaleOut;
      const run = scaleOut
        ? stoppedWhilePaused((signal) => scaledJob(repo, this.options.client, jobId, { ...params, scaleOut }, signal, log), control, {
            beforeStart: (elapsedMs) => scaledProgress(undefined, elapsedMs),
            onStopped: () => log('info', 'paused: the scaled-out run stops its shards; on resume it runs again, reusing what is stored'),
          })
        : this.plainRun(repo, params, control, log);
      log('info', `backing up ${[...params.paths, ...(params.sources ?? []).map((src) => `${src.type} source ${defaultFileName(src)}`)].join(', ')} to ${params.destinations.map((d) => d.name).join(', ')}`);
      const report = (): void => {
        this.options.send({ type: 'progress', jobId, progress: run.progress() });
        flush();
      };
      const timer = setInterval(report, PROGRESS_MS);
      try {
        const result = await run.execute();
        report();
        const s = result.snapshot.summary;
        log('info', `snapshot ${result.snapshotId.slice(0, 8)}: ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified files; ${s.bytesAdded} bytes added`);
        const outcome: JobOutcome = {
          outcome: 'completed',
          snapshotId: result.snapshotId,
          bytesAdded: s.bytesAdded,
          filesDone: s.totalFiles,
          bytesDone: s.totalBytes,
          warnings: s.warnings,
          destinations: result.destinations.map((d) => ({ destinationId: idOf.get(d.location) ?? d.location, committed: d.committed, ...(d.error ? { error: d.error } : {}) })),
        };
        return { outcome, made: { host: result.snapshot.host, paths: result.snapshot.paths } };
      } finally {
        clearInterval(timer);
      }
    } finally {
      await repo.close();
    }
  }

  /** An ordinary backup of the plan, in this process. */
  private plainRun(repo: Repository, params: BackupParams, control: TaskControl, log: LogTo): BackupExecution {
    const run = new BackupRun(repo, {
      paths: params.paths,
      selection: { excludes: params.excludes },
      tags: params.tags,
      oneFileSystem: params.oneFileSystem,
      streams: streamSources(params.sources ?? []),
      host: os.hostname(),
      signal: control.signal,
      pause: control.gate,
      ...(this.options.spoolDir ? { spoolDir: this.options.spoolDir } : {}),
      ...(this.options.workers ? { workers: this.options.workers } : {}),
    });
    run.onWarning = (w) => log('warn', `${w.path}: ${w.message}`);
    run.onCommitted = (location) => log('info', `snapshot committed on ${location}`);
    return { execute: () => run.run(), progress: () => run.progress() };
  }

  private async restore(jobId: string, params: RestoreParams, control: TaskControl, log: LogTo, flush: () => void): Promise<JobOutcome> {
    const stores = params.destinations.map((d) => this.openDestination(d, control.signal));
    let repo: Repository;
    try {
      repo = await this.openRepository(params.destinations, stores, log, false);
    } catch (err) {
      await Promise.all(stores.map((s) => s.close()));
      throw err;
    }
    try {
      const snap = resolveSnapshot(await repo.listSnapshots(), params.snapshot);
      const view = await SnapshotView.open(repo, snap.snapshot);
      const from = await view.find('/');
      const run = new RestoreRun(repo, { target: params.target, includes: params.include, signal: control.signal, pause: control.gate });
      run.filesTotal = snap.snapshot.summary.totalFiles;
      run.bytesTotal = snap.snapshot.summary.totalBytes;
      log('info', `restoring snapshot ${snap.id.slice(0, 8)} to ${params.target}`);
      const report = (): void => {
        const p = run.progress();
        this.options.send({ type: 'progress', jobId, progress: { ...p, stage: 'restoring' } });
        flush();
      };
      const timer = setInterval(report, PROGRESS_MS);
      try {
        const result = await run.run(view, from);
        report();
        for (const e of result.errors.slice(0, 100)) log('warn', `${e.path}: ${e.message}`);
        log('info', `restored ${result.files} files, ${result.dirs} directories, ${result.bytes} bytes${result.errors.length ? `; ${result.errors.length} could not be restored` : ''}`);
        return { outcome: 'completed', snapshotId: snap.id, bytesAdded: 0, filesDone: result.files, bytesDone: result.bytes, warnings: result.errors.length, destinations: [] };
      } finally {
        clearInterval(timer);
      }
    } finally {
      await repo.close();
    }
  }
}

/** Why the task manager stopped a run (cancel or shutdown), if it did. */
function stopOf(control: TaskControl): TaskStopped | undefined {
  const reason: unknown = control.signal.aborted ? control.signal.reason : undefined;
  return reason instanceof TaskStopped ? reason : undefined;
}
