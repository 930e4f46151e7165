// When to notify, and whom. The daemon tells the notifier what happens (a run started or ended, a
// destination's test-write); the notifier decides what deserves a message and sends it through the
// plan's channels (its `notify`, else the top-level one):
//   failure     a run failed after its last retry (or with an error retrying cannot fix)
//   recovery    the first success after a failure notification
//   overdue     no success for longer than the plan's maxAge (once, until the next success)
//   test-write  a destination failed its test-write (once, until it passes again)
//   summary     daily or weekly (top-level notify.summary): runs, failures, data added, last successes
// Ping URLs hear of every run: start, then success or (after the last retry) fail. What was already
// said is kept in <data dir>/daemon/notify-state.json, so a restart does not repeat it.
//
// Interface (the fleet server composes the same rules with its own alerts store):
//   new Notifier({ config, dataDir, jobs, host, now, log, sendOptions? })
//   runStarted(plan) · runEnded(report) · check() · testWriteResult(location, plans, error?) · idle()
import fs from 'node:fs';
import path from 'node:path';
import { durationMs, notifyOf, type NotifyConfig } from '../../config/automation.ts';
import type { Config } from '../../config/config-file.ts';
import { latestSlot, parseSchedule } from '../../config/schedule.ts';
import { redact } from '../../jobs/redact.ts';
import { statusReport, type JobStore } from '../../jobs/index.ts';
import type { RunReport } from '../job-runner.ts';
import type { RunnerLog } from '../job-runner.ts';
import { ping, postWebhook, sendEmail, type SendOptions } from './channels.ts';
import { compose, type Notification, type PlanSummary } from './messages.ts';

interface PlanState {
  /** A failure was notified at this time and no success came since. */
  failingSince?: number;
  overdueNotified?: boolean;
}

interface RunRecord {
  readonly plan: string;
  readonly outcome: string;
  readonly finishedAt: number;
  readonly bytesAdded: number;
}

interface State {
  plans: Record<string, PlanState>;
  /** Destinations whose failed test-write was notified. */
  failingDestinations: string[];
  lastSummary?: number;
  /** Ended runs of the last eight days, for the summary. */
  runs: RunRecord[];
}

const KEEP_RUNS_MS = 8 * 86_400_000;
const MAX_RUNS = 5_000;
const PERIOD_MS = { daily: 86_400_000, weekly: 7 * 86_400_000 } as const;
const SUMMARY_CRON = { daily: '0 0 * * *', weekly: '0 0 * * 1' } as const;

export interface NotifierOptions {
  readonly config: () => Config;
  readonly dataDir: string;
  readonly jobs: JobStore;
  readonly host: string;
  readonly now: () => number;
  readonly log: RunnerLog;
  readonly sendOptions?: SendOptions;
  /** When the daemon started: the age of a plan that never succeeded counts from here at the latest. */
  readonly startedAt: number;
}

export class Notifier {
  private readonly options: NotifierOptions;
  private readonly file: string;
  private state: State;
  private readonly pending = new Set<Promise<void>>();

  constructor(options: NotifierOptions) {
    this.options = options;
    this.file = path.join(options.dataDir, 'daemon', 'notify-state.json');
    this.state = this.load();
    if (this.state.lastSummary === undefined) {
      // The first summary covers a whole period after the notifier first ran, not the past.
      this.state.lastSummary = options.now();
      this.save();
    }
  }

  private load(): State {
    try {
      const value = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Partial<State>;
      return { plans: value.plans ?? {}, failingDestinations: value.failingDestinations ?? [], runs: value.runs ?? [], ...(value.lastSummary !== undefined ? { lastSummary: value.lastSummary } : {}) };
    } catch {
      return { plans: {}, failingDestinations: [], runs: [] };
    }
  }

  private save(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.state), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }

  private plan(name: string): PlanState {
    return (this.state.plans[name] ??= {});
  }

  private notifyConfig(plan: string | undefined): NotifyConfig | undefined {
    const config = this.options.config();
    const planConfig = plan === undefined ? undefined : config.plans[plan];
    return planConfig ? notifyOf(planConfig, config) : config.notify;
  }

  /** Resolves when every notification under way has been sent or has failed (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((err: unknown) => this.options.log.warn(`notification failed: ${(err as Error).message}`)).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private pingPlan(plan: string, event: 'start' | 'success' | 'fail', body = ''): void {
    const url = this.notifyConfig(plan)?.ping;
    if (url) this.track(ping(url, event, body, this.options.sendOptions));
  }

  runStarted(plan: string): void {
    this.pingPlan(plan, 'start');
  }

  runEnded(report: RunReport): void {
    this.state.runs.push({ plan: report.plan, outcome: report.outcome, finishedAt: report.finishedAt, bytesAdded: report.bytesAdded ?? 0 });
    const keepFrom = this.options.now() - KEEP_RUNS_MS;
    this.state.runs = this.state.runs.filter((r) => r.finishedAt >= keepFrom).slice(-MAX_RUNS);
    const plan = this.plan(report.plan);
    if (report.outcome === 'completed') {
      this.pingPlan(report.plan, 'success');
      if (plan.failingSince !== undefined) {
        this.send({ kind: 'recovery', plan: report.plan, ...(report.jobId !== undefined ? { jobId: report.jobId } : {}), ...(report.snapshotId ? { snapshotId: report.snapshotId } : {}), failingSince: plan.failingSince }, report.plan);
      }
      delete plan.failingSince;
      delete plan.overdueNotified;
    } else if (report.outcome === 'failed') {
      this.pingPlan(report.plan, 'fail', report.error ?? '');
      const job = report.jobId !== undefined ? this.options.jobs.job(report.jobId) : undefined;
      const lastSuccess = this.lastSuccess(report.plan);
      this.send(
        {
          kind: 'failure',
          plan: report.plan,
          ...(report.jobId !== undefined ? { jobId: report.jobId } : {}),
          error: report.error ?? 'unknown error',
          attempts: (job?.retryCount ?? 0) + 1,
          ...(lastSuccess !== undefined ? { lastSuccess } : {}),
        },
        report.plan,
      );
      plan.failingSince ??= report.finishedAt;
    }
    this.save();
  }

  /** A destination's test-write: failed (error) or passed. Notified once per failure spell. */
  testWriteResult(location: string, plans: readonly string[], error?: string): void {
    const failing = this.state.failingDestinations.includes(location);
    if (error === undefined) {
      if (failing) {
        this.state.failingDestinations = this.state.failingDestinations.filter((l) => l !== location);
        this.save();
      }
      return;
    }
    if (failing) return;
    this.state.failingDestinations.push(location);
    this.save();
    // Once per distinct set of channels among the plans that write there.
    const seen = new Set<string>();
    for (const plan of plans) {
      const key = JSON.stringify(this.notifyConfig(plan) ?? null);
      if (seen.has(key)) continue;
      seen.add(key);
      this.send({ kind: 'test-write', location, plans, error }, plan);
    }
  }

  /** Periodic: plans past their maxAge, and the summary when its time has come. */
  check(): void {
    const config = this.options.config();
    const now = this.options.now();
    let changed = false;
    for (const [name, plan] of Object.entries(config.plans)) {
      const maxAgeMs = durationMs(plan.maxAge);
      if (maxAgeMs === undefined || this.plan(name).overdueNotified) continue;
      const lastSuccess = this.lastSuccess(name);
      // Never succeeded: its age counts from its first job, or from the daemon's start.
      const since = lastSuccess ?? Math.min(this.options.jobs.selectJobs('WHERE p.name = ? ORDER BY j.id LIMIT 1', name)[0]?.createdAt ?? Infinity, this.options.startedAt);
      if (now - since <= maxAgeMs) continue;
      this.plan(name).overdueNotified = true;
      changed = true;
      this.send({ kind: 'overdue', plan: name, maxAgeMs, ...(lastSuccess !== undefined ? { lastSuccess } : {}) }, name);
    }
    const period = config.notify?.summary;
    if (period) {
      const slot = latestSlot(parseSchedule({ cron: SUMMARY_CRON[period] }), now);
      if (slot !== undefined && this.state.lastSummary !== undefined && slot > this.state.lastSummary) {
        this.state.lastSummary = now;
        changed = true;
        this.send(this.summary(period, slot - PERIOD_MS[period], slot), undefined);
      }
    }
    if (changed) this.save();
  }

  private lastSuccess(plan: string): number | undefined {
    const [job] = this.options.jobs.selectJobs(`WHERE p.name = ? AND j.status = 'completed' ORDER BY j.finished_at DESC LIMIT 1`, plan);
    return job?.finishedAt ?? undefined;
  }

  private summary(period: 'daily' | 'weekly', from: number, to: number): Notification {
    const runs = this.state.runs.filter((r) => r.finishedAt >= from && r.finishedAt < to);
    const plans: PlanSummary[] = Object.keys(this.options.config().plans).map((plan) => {
      const mine = runs.filter((r) => r.plan === plan);
      const lastSuccess = this.lastSuccess(plan);
      return {
        plan,
        runs: mine.length,
        failures: mine.filter((r) => r.outcome === 'failed' || r.outcome === 'retrying').length,
        bytesAdded: mine.reduce((sum, r) => sum + r.bytesAdded, 0),
        ...(lastSuccess !== undefined ? { lastSuccess } : {}),
      };
    });
    const destinations = statusReport(this.options.jobs).destinations.map((d) => ({
      location: d.destination.location,
      ...(d.lastSuccess ? { lastSuccess: d.lastSuccess.finishedAt } : {}),
    }));
    return { kind: 'summary', period, from, to, plans, destinations };
  }

  /** Sends `n` through the channels of `plan` (the top-level ones when undefined), if they want this kind. */
  private send(n: Notification, plan: string | undefined): void {
    const notify = this.notifyConfig(plan);
    if (!notify) return;
    if (n.kind !== 'summary' && notify.on && !notify.on.includes(n.kind)) return;
    const message = compose(n, this.options.host);
    this.options.log.info(`notifying: ${message.subject}`);
    const email = this.options.config().email;
    if (notify.email?.length) {
      if (email) this.track(sendEmail(email, notify.email, message, this.options.sendOptions));
      else this.options.log.warn('notify.email is set but the configuration has no email section (smtp, from); no email sent');
    }
    for (const url of notify.webhooks ?? []) {
      this.track(postWebhook(url, redact({ type: 'coffer-notification', host: this.options.host, subject: message.subject, text: message.text, ...n }), this.options.sendOptions));
    }
  }
}
