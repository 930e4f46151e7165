// What a notification says: a short subject and a few lines that say what happened and what to do,
// never a secret (every error and location goes through the job layer's redaction). The same text goes
// by email, in a webhook's JSON and in a ping's body.

import { redactString } from '../../jobs/redact.ts';
import { formatBytes } from '../../units.ts';

export type Notification =
  | { readonly kind: 'failure'; readonly plan: string; readonly jobId?: number; readonly error: string; readonly attempts: number; readonly lastSuccess?: number }
  | { readonly kind: 'recovery'; readonly plan: string; readonly jobId?: number; readonly snapshotId?: string; readonly failingSince?: number }
  | { readonly kind: 'overdue'; readonly plan: string; readonly lastSuccess?: number; readonly maxAgeMs: number }
  | { readonly kind: 'test-write'; readonly location: string; readonly plans: readonly string[]; readonly error: string }
  | { readonly kind: 'summary'; readonly period: 'daily' | 'weekly'; readonly from: number; readonly to: number; readonly plans: readonly PlanSummary[]; readonly destinations: readonly DestinationSummary[] };

export type NotificationKind = Notification['kind'];

export interface PlanSummary {
  readonly plan: string;
  readonly runs: number;
  readonly failures: number;
  readonly bytesAdded: number;
  readonly lastSuccess?: number;
}

export interface DestinationSummary {
  readonly location: string;
  readonly lastSuccess?: number;
}

export interface Message {
  readonly subject: string;
  readonly text: string;
}

function when(ms: number | undefined): string {
  return ms === undefined ? 'never' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function hours(ms: number): string {
  if (ms < 90_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 90 * 60_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 48 * 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 86_400_000)} days`;
}

export function compose(n: Notification, host: string): Message {
  switch (n.kind) {
    case 'failure':
      return {
        subject: `coffer: backup of ${n.plan} failed on ${host}`,
        text: [
          `The backup of plan ${n.plan} on ${host} failed${n.attempts > 1 ? ` after ${n.attempts} attempts` : ''}${n.jobId !== undefined ? ` (job ${n.jobId})` : ''}:`,
          `  ${redactString(n.error)}`,
          `Last successful backup of ${n.plan}: ${when(n.lastSuccess)}.`,
          `What to do: on ${host}, read the log with "coffer logs${n.jobId !== undefined ? ` ${n.jobId}` : ''}", fix the cause, then run "coffer run ${n.plan}" or wait for its next scheduled run.`,
        ].join('\n'),
      };
    case 'recovery':
      return {
        subject: `coffer: backup of ${n.plan} works again on ${host}`,
        text: [
          `The backup of plan ${n.plan} on ${host} succeeded${n.jobId !== undefined ? ` (job ${n.jobId}` : ''}${n.snapshotId ? `, snapshot ${n.snapshotId.slice(0, 8)}` : ''}${n.jobId !== undefined ? ')' : ''}${n.failingSince !== undefined ? ` after failing since ${when(n.failingSince)}` : ''}.`,
          'Nothing to do.',
        ].join('\n'),
      };
    case 'overdue':
      return {
        subject: `coffer: no backup of ${n.plan} for over ${hours(n.maxAgeMs)} on ${host}`,
        text: [
          `Plan ${n.plan} on ${host} has had no successful backup for longer than its maxAge of ${hours(n.maxAgeMs)}. Last success: ${when(n.lastSuccess)}.`,
          `What to do: on ${host}, check that the daemon runs ("coffer daemon status"), look at "coffer jobs" and "coffer status", then run "coffer run ${n.plan}".`,
        ].join('\n'),
      };
    case 'test-write':
      return {
        subject: `coffer: destination ${redactString(n.location)} failed its test-write on ${host}`,
        text: [
          `Writing a test object to ${redactString(n.location)} from ${host} failed:`,
          `  ${redactString(n.error)}`,
          `Backups of ${n.plans.join(', ')} will not reach it until this is fixed. What to do: check its credentials, the network and its free space; "coffer doctor --plan ${n.plans[0]}" repeats the test.`,
        ].join('\n'),
      };
    case 'summary': {
      const runs = n.plans.reduce((s, p) => s + p.runs, 0);
      const failures = n.plans.reduce((s, p) => s + p.failures, 0);
      const added = n.plans.reduce((s, p) => s + p.bytesAdded, 0);
      return {
        subject: `coffer: ${n.period} summary for ${host}: ${runs} runs, ${failures} failed`,
        text: [
          `Backups on ${host} from ${when(n.from)} to ${when(n.to)}: ${runs} runs, ${failures} failed, ${formatBytes(added)} added.`,
          '',
          'Plans (runs, failed, added, last success):',
          ...n.plans.map((p) => `  ${p.plan}: ${p.runs} runs, ${p.failures} failed, ${formatBytes(p.bytesAdded)} added, last success ${when(p.lastSuccess)}`),
          '',
          'Destinations (last success):',
          ...n.destinations.map((d) => `  ${redactString(d.location)}: ${when(d.lastSuccess)}`),
          ...(failures > 0 ? ['', 'What to do: "coffer status" lists the failures; "coffer logs JOB" shows why each one failed.'] : []),
        ].join('\n'),
      };
    }
  }
}
