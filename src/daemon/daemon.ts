// `coffer daemon`: the scheduler, the task manager, the job runner and the control socket, composed.
//
// - Plans with a `schedule` run on it (scheduler.ts: overdue once, safe timers, sleep and clock jumps).
// - Every run goes through the job database as a queued job, then the task manager (at most
//   `daemon.concurrency` at once, highest `queuePriority` first, one per plan: a duplicate trigger is
//   skipped and logged). Failed runs with retries left come back when their retry is due.
// - At start-up, jobs interrupted by a shutdown or a crash are queued again and resume where they were.
// - Control from the CLI over the Unix socket (control.ts): status, pause/resume (all or one job),
//   cancel, run now.
// - stop(): nothing new starts; running jobs checkpoint, are marked interrupted and resume at the next start.
//
// Interface:
//   Daemon.start(options) → a running daemon (refuses when another one runs on the data directory)
//   daemon.stop(reason) · daemon.reload() · daemon.status() · daemon.done (resolves once stopped)
//   The fleet agent composes the same parts (scheduler, task manager, runPlan) with its own job store.
import os from 'node:os';
import { durationMs, scheduleOf } from '../config/automation.ts';
import { loadConfig, type Config } from '../config/config-file.ts';
import type { BackupProgress } from '../engine/backup/progress.ts';
import { JobStore, type RetryPolicy } from '../jobs/index.ts';
import { testWrite } from '../engine/test-write.ts';
import { count } from '../units.ts';
import { VERSION } from '../version.ts';
import { planStoreSettings } from './plan-stores.ts';
import type { SendOptions } from './notify/channels.ts';
import { Notifier } from './notify/notifier.ts';
import { retryPolicyOf } from './job-tracking.ts';
import { systemClock, type Clock } from './clock.ts';
import { ControlError, ControlServer, type ControlReply } from './control.ts';
import { runPlan, type RunnerContext, type RunReport } from './job-runner.ts';
import { DaemonLog } from './log.ts';
import { Scheduler, type DueEvent } from './scheduler.ts';
import { jobViews, type DaemonStatus } from './status.ts';
import { DEFAULT_CONCURRENCY, TaskManager, type TaskControl, type TaskEvent, type TaskInfo, type TaskReason } from './task-manager.ts';

export interface DaemonOptions {
  readonly configFile: string;
  readonly dataDir: string;
  readonly clock?: Clock;
  /** How often the scheduler compares the clocks at most (default 60 s). */
  readonly checkIntervalMs?: number;
  /** How often the queue looks for due retries and stale jobs (default 5 s). */
  readonly pollMs?: number;
  readonly log?: DaemonLog;
  /** How to open stores, get passphrases and describe errors: the CLI's rules. */
  readonly runner: Pick<RunnerContext, 'openStore' | 'passphrase' | 'planSources' | 'describeError' | 'isRetryable'>;
  /** How notifications retry (tests make it quick). */
  readonly sendOptions?: SendOptions;
}

export const DEFAULT_POLL_MS = 5_000;
export const DEFAULT_TEST_WRITE_EVERY_MS = 24 * 3_600_000;
/** At shutdown, notifications still being sent get this long. */
const NOTIFY_GRACE_MS = 10_000;

export class Daemon {
  readonly options: DaemonOptions;
  readonly log: DaemonLog;
  readonly clock: Clock;
  readonly startedAt: number;
  readonly done: Promise<void>;
  private config: Config;
  private retryPolicy: RetryPolicy;
  private readonly jobs: JobStore;
  private readonly manager: TaskManager;
  private readonly scheduler: Scheduler;
  private control!: ControlServer;
  private readonly progress = new Map<number, { progress(): BackupProgress }>();
  private readonly notifier: Notifier;
  private lastTestWrite = -Infinity;
  private testingDestinations = false;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private stopping: Promise<void> | undefined;
  private markDone!: () => void;

  private constructor(options: DaemonOptions, config: Config) {
    this.options = options;
    this.config = config;
    this.retryPolicy = retryPolicyOf(config.retries);
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? new DaemonLog(undefined, () => this.clock.now());
    this.startedAt = this.clock.now();
    this.done = new Promise((resolve) => (this.markDone = resolve));
    this.jobs = JobStore.open(options.dataDir, { now: () => this.clock.now(), retryPolicy: this.retryPolicy });
    this.manager = new TaskManager({
      concurrency: config.daemon?.concurrency ?? DEFAULT_CONCURRENCY,
      clock: this.clock,
      run: (task, control) => this.runTask(task, control),
      onEvent: (event) => this.logTaskEvent(event),
    });
    this.scheduler = new Scheduler({
      clock: this.clock,
      history: { lastRun: (plan) => this.jobs.selectJobs('WHERE p.name = ? ORDER BY j.id DESC LIMIT 1', plan)[0]?.createdAt },
      onDue: (event) => this.due(event),
      onClockJump: (jump) =>
        this.log.info(
          jump.byMs > 0
            ? `the wall clock moved ${Math.round(jump.byMs / 1000)} s ahead of the monotonic clock (the machine slept or the clock was set); overdue plans run once`
            : `the wall clock was set back ${Math.round(-jump.byMs / 1000)} s; schedules follow the new time`,
        ),
      onError: (err) => this.log.error(`scheduler: ${(err as Error).message}`),
      ...(options.checkIntervalMs !== undefined ? { checkIntervalMs: options.checkIntervalMs } : {}),
    });
    this.notifier = new Notifier({
      config: () => this.config,
      dataDir: options.dataDir,
      jobs: this.jobs,
      host: os.hostname(),
      now: () => this.clock.now(),
      log: this.log,
      startedAt: this.startedAt,
      ...(options.sendOptions ? { sendOptions: options.sendOptions } : {}),
    });
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    await ControlServer.assertNoneRunning(options.dataDir);
    const daemon = new Daemon(options, loadConfig(options.configFile));
    try {
      daemon.control = await ControlServer.listen(options.dataDir, {
        status: () => daemon.status(),
        pause: (target) => daemon.pause(target),
        resume: (target) => daemon.resume(target),
        cancel: (job) => daemon.cancel(job),
        run: (plan) => daemon.runNow(plan),
      });
    } catch (err) {
      daemon.jobs.close();
      throw err;
    }
    daemon.requeueInterrupted();
    daemon.scheduler.setPlans(daemon.scheduledPlans());
    daemon.scheduler.start();
    daemon.poll();
    daemon.pollTimer = setInterval(() => daemon.poll(), options.pollMs ?? DEFAULT_POLL_MS);
    const plans = Object.keys(daemon.config.plans);
    daemon.log.info(`coffer ${VERSION} daemon started (pid ${process.pid}): ${count(plans.length, 'plan')}, ${daemon.scheduler.upcoming().length} scheduled, up to ${daemon.manager.limit} at once; control socket ${daemon.control.socket}`);
    for (const { plan, at } of daemon.scheduler.upcoming()) daemon.log.info(`plan ${plan}: next run ${new Date(at).toISOString()}`);
    return daemon;
  }

  private scheduledPlans(): { name: string; schedule: NonNullable<ReturnType<typeof scheduleOf>> }[] {
    return Object.entries(this.config.plans).flatMap(([name, plan]) => {
      const schedule = scheduleOf(plan);
      return schedule ? [{ name, schedule }] : [];
    });
  }

  /** Reads the configuration again (SIGHUP); a file with problems is refused and the old one kept. */
  reload(): void {
    let config: Config;
    try {
      config = loadConfig(this.options.configFile);
    } catch (err) {
      this.log.error(`configuration not reloaded, the old one stays in use: ${(err as Error).message}`);
      return;
    }
    this.config = config;
    this.retryPolicy = retryPolicyOf(config.retries);
    this.manager.setConcurrency(config.daemon?.concurrency ?? DEFAULT_CONCURRENCY);
    this.scheduler.setPlans(this.scheduledPlans());
    this.log.info(`configuration reloaded: ${count(Object.keys(config.plans).length, 'plan')}`);
  }

  // ── Queueing ──────────────────────────────────────────────────────────────────────────────────────

  private due(event: DueEvent): void {
    const late = event.reason === 'overdue' ? ` (overdue: its run at ${new Date(event.slot).toISOString()} was missed)` : '';
    this.log.info(`plan ${event.plan} is due${late}`);
    this.enqueue(event.plan, event.reason);
  }

  /** Queues a run of the plan unless one is already queued or running. */
  private enqueue(planName: string, reason: TaskReason): { accepted: boolean; jobId: number } {
    const existing = this.manager.list().find((t) => t.key === planName);
    if (existing) {
      this.log.info(`plan ${planName} already has job ${existing.id} ${existing.state}; this ${reason} trigger is skipped`);
      return { accepted: false, jobId: Number(existing.id) };
    }
    const plan = this.config.plans[planName]!;
    const record = this.jobs.ensurePlan(planName, plan.repos.map((location) => ({ name: location, location })));
    const job = this.jobs.enqueue(record.id, { priority: plan.queuePriority ?? 0 });
    this.manager.submit({ id: String(job.id), key: planName, reason, priority: job.priority });
    return { accepted: true, jobId: job.id };
  }

  /** Jobs left interrupted by a shutdown or a crash go back to the queue, to resume where they were. */
  private requeueInterrupted(): void {
    for (const job of this.jobs.detectStaleJobs()) this.log.warn(`job ${job.id} (plan ${job.planName}) was left running by a process that is gone; it resumes`);
    for (const job of this.jobs.selectJobs(`WHERE j.status = 'interrupted' ORDER BY j.id`)) {
      if (!this.config.plans[job.planName]) continue;
      this.jobs.requeueJob(job.id);
      this.log.info(`job ${job.id} (plan ${job.planName}) was interrupted (${job.error ?? 'no reason recorded'}); it is queued to resume`);
    }
  }

  /** Due retries and resumes from the job database; stale runs of other processes; maxAge, summaries, test-writes. */
  private poll(): void {
    try {
      this.jobs.detectStaleJobs();
      for (const job of this.jobs.dueJobs()) {
        if (!this.config.plans[job.planName] || this.manager.list().some((t) => t.key === job.planName)) continue;
        this.manager.submit({ id: String(job.id), key: job.planName, reason: job.retryCount > 0 ? 'retry' : 'resume', priority: job.priority });
      }
      this.notifier.check();
      if (this.clock.now() - this.lastTestWrite >= durationMs(this.config.daemon?.testWriteEvery, DEFAULT_TEST_WRITE_EVERY_MS)) void this.testDestinations();
    } catch (err) {
      this.log.error(`checking the queue failed: ${(err as Error).message}`);
    }
  }

  /** Writes, reads back and deletes a probe on every destination of every plan; a failure is notified. */
  private async testDestinations(): Promise<void> {
    if (this.testingDestinations || this.stopping) return;
    this.testingDestinations = true;
    this.lastTestWrite = this.clock.now();
    try {
      const byLocation = new Map<string, string[]>();
      for (const [name, plan] of Object.entries(this.config.plans)) for (const location of plan.repos) byLocation.set(location, [...(byLocation.get(location) ?? []), name]);
      for (const [location, plans] of byLocation) {
        const plan = this.config.plans[plans[0]!]!;
        let error: string | undefined;
        try {
          const store = this.options.runner.openStore(location, await planStoreSettings(plan));
          try {
            const probe = await testWrite(store);
            if (!probe.ok) error = probe.error;
          } finally {
            await store.close();
          }
        } catch (err) {
          error = this.options.runner.describeError(err);
        }
        if (error !== undefined) this.log.warn(`destination ${location} failed its test-write: ${error}`);
        this.notifier.testWriteResult(location, plans, error);
      }
    } finally {
      this.testingDestinations = false;
    }
  }

  private async runTask(task: TaskInfo, control: TaskControl): Promise<void> {
    const report = await runPlan(task.key, this.runnerContext(), control);
    this.logReport(report);
    if (report.outcome === 'busy') {
      // Another process (a coffer backup by hand) runs the plan: this trigger is a duplicate.
      this.jobs.cancelJob(Number(task.id), 'skipped: the plan was already running in another process');
    } else this.notifier.runEnded(report);
  }

  private runnerContext(): RunnerContext {
    return {
      ...this.options.runner,
      dataDir: this.options.dataDir,
      config: this.config,
      retryPolicy: this.retryPolicy,
      now: () => this.clock.now(),
      log: this.log,
      onStarted: (plan) => this.notifier.runStarted(plan),
      onProgress: (jobId, source) => {
        if (source) this.progress.set(jobId, source);
        else this.progress.delete(jobId);
      },
    };
  }

  private logReport(r: RunReport): void {
    const job = r.jobId !== undefined ? `job ${r.jobId} (plan ${r.plan})` : `plan ${r.plan}`;
    const took = `${Math.round((r.finishedAt - r.startedAt) / 1000)} s`;
    switch (r.outcome) {
      case 'completed':
        this.log.info(`${job} completed in ${took}: snapshot ${r.snapshotId?.slice(0, 8)}, ${count(r.filesNew ?? 0, 'new or changed file')}, ${r.bytesAdded ?? 0} bytes added${r.warnings ? `, ${count(r.warnings, 'file')} could not be read` : ''}${r.adoptedPacks ? `, reused ${count(r.adoptedPacks, 'pack')} left by the interrupted run` : ''}`);
        for (const d of r.destinations ?? []) if (!d.committed) this.log.warn(`${job}: ${d.location} did not get the snapshot: ${d.error}`);
        if (r.retention?.error) this.log.warn(`${job}: retention failed: ${r.retention.error}; the snapshot is kept, coffer forget --plan ${r.plan} applies the policy by hand`);
        else if (r.retention) this.log.info(`${job}: retention forgot ${count(r.retention.forgotten, 'snapshot')}${r.retention.pruned ? `, prune freed ${r.retention.freedBytes ?? 0} bytes` : ''}`);
        break;
      case 'retrying':
        this.log.warn(`${job} failed: ${r.error}; retry ${r.retry!.attempt} at ${new Date(r.retry!.at).toISOString()}`);
        break;
      case 'failed':
        this.log.error(`${job} failed: ${r.error}; no retries left (coffer logs ${r.jobId ?? ''} has the details)`);
        break;
      case 'busy':
        this.log.warn(`${job} skipped: ${r.error}`);
        break;
      default:
        this.log.info(`${job} ${r.outcome}: ${r.error}`);
    }
  }

  private logTaskEvent(event: TaskEvent): void {
    switch (event.type) {
      case 'started':
        this.log.info(`job ${event.task.id} (plan ${event.task.key}) started (${event.task.reason})`);
        break;
      case 'queued':
        this.log.info(`job ${event.task.id} (plan ${event.task.key}) queued (${event.task.reason})`);
        break;
      case 'paused':
      case 'resumed':
      case 'cancelled':
        this.log.info(`job ${event.task.id} (plan ${event.task.key}) ${event.type}`);
        break;
      case 'duplicate':
        this.log.info(`plan ${event.spec.key} already has job ${event.task.id} ${event.task.state}; the ${event.spec.reason} trigger is skipped`);
        break;
      case 'paused-all':
        this.log.info('everything paused: running jobs finish their current pack and wait; queued jobs wait');
        break;
      case 'resumed-all':
        this.log.info('everything resumed');
        break;
      case 'finished':
        if (event.error !== undefined) this.log.error(`job ${event.task.id} (plan ${event.task.key}) stopped with an error: ${(event.error as Error).message ?? event.error}`);
        break;
    }
  }

  // ── Control ───────────────────────────────────────────────────────────────────────────────────────

  status(): DaemonStatus {
    const now = this.clock.now();
    return {
      type: 'daemon-status',
      pid: process.pid,
      version: VERSION,
      startedAt: this.startedAt,
      now,
      paused: this.manager.globallyPaused,
      concurrency: this.manager.limit,
      configFile: this.options.configFile,
      dataDir: this.options.dataDir,
      jobs: jobViews(this.manager.list(), this.progress, this.jobs, now),
      schedules: this.scheduler.upcoming().map((u) => ({ plan: u.plan, nextRun: u.at })),
    };
  }

  runNow(planName: string): ControlReply {
    if (!this.config.plans[planName]) {
      const known = Object.keys(this.config.plans);
      throw new ControlError(404, `no plan "${planName}" in ${this.options.configFile}${known.length ? ` (plans: ${known.join(', ')})` : ''}`);
    }
    if (this.stopping) throw new ControlError(409, 'the daemon is stopping');
    const { accepted, jobId } = this.enqueue(planName, 'manual');
    return accepted
      ? { ok: true, message: `plan ${planName} queued as job ${jobId}`, job: jobId }
      : { ok: true, message: `plan ${planName} is already queued or running as job ${jobId}; not queued twice`, job: jobId };
  }

  pause(target: { job?: number; all?: boolean }): ControlReply {
    if (target.job === undefined) {
      this.manager.pauseAll();
      return { ok: true, message: 'paused everything: running jobs finish their current pack and wait; queued jobs wait' };
    }
    const task = this.task(target.job);
    this.manager.pause(task.id);
    return { ok: true, message: task.state === 'running' ? `job ${task.id} pauses after its current pack` : `job ${task.id} stays queued until resumed` };
  }

  resume(target: { job?: number; all?: boolean }): ControlReply {
    if (target.job === undefined) {
      this.manager.resumeAll();
      return { ok: true, message: 'resumed everything' };
    }
    const task = this.task(target.job);
    this.manager.resume(task.id);
    return { ok: true, message: `job ${task.id} resumed${this.manager.globallyPaused ? ' (but everything is paused: coffer resume --all)' : ''}` };
  }

  cancel(jobId: number): ControlReply {
    const task = this.manager.get(String(jobId));
    if (task) {
      this.manager.cancel(task.id);
      if (task.state === 'queued') this.jobs.cancelJob(jobId);
      return { ok: true, message: task.state === 'queued' ? `job ${jobId} left the queue` : `job ${jobId} is stopping: it checkpoints and stops` };
    }
    const job = this.jobs.job(jobId);
    if (job && job.status === 'pending') {
      this.jobs.cancelJob(jobId);
      return { ok: true, message: `job ${jobId} (waiting for a retry) cancelled` };
    }
    throw new ControlError(404, job ? `job ${jobId} is ${job.status}; only queued and running jobs can be cancelled` : `no job ${jobId}; coffer jobs lists them`);
  }

  private task(jobId: number): TaskInfo {
    const task = this.manager.get(String(jobId));
    if (!task) {
      const job = this.jobs.job(jobId);
      throw new ControlError(404, job ? `job ${jobId} is ${job.status}, not queued or running in this daemon` : `no job ${jobId}; coffer jobs lists them`);
    }
    return task;
  }

  // ── Stopping ──────────────────────────────────────────────────────────────────────────────────────

  /** Graceful: nothing new starts, running jobs checkpoint and are marked interrupted; resolves when all is closed. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info(`stopping (${reason}): running jobs checkpoint and resume at the next start`);
      this.scheduler.stop();
      if (this.pollTimer) clearInterval(this.pollTimer);
      await this.manager.shutdown(`the daemon stopped (${reason})`);
      await Promise.race([this.notifier.idle(), new Promise((resolve) => setTimeout(resolve, NOTIFY_GRACE_MS).unref())]);
      await this.control.close();
      this.jobs.close();
      this.log.info('stopped');
      this.markDone();
    })();
    return this.stopping;
  }
}
