// A plan's retention after a successful run: its policy over exactly the plan's own snapshots (the host
// and paths of the snapshot the run just made; a --path style filter would sweep in another plan backing
// up a superset), then a prune when this run is due one (every pruneEvery-th completed run). The daemon's
// job runner and the fleet agent both call this one step. The backup stands whatever happens here: a
// failure comes back in the report, never as an exception.
import { forgetSnapshots, planForgetOptions, type PlanRetention } from '../engine/forget.ts';
import { PruneRun } from '../engine/prune/prune.ts';
import { redactString } from '../jobs/redact.ts';
import type { Repository } from '../repo/repository.ts';
import { removeGoneWriters, WriterSession } from '../repo/writer-markers.ts';

export interface RetentionReport {
  readonly forgotten: number;
  readonly pruned: boolean;
  /** Bytes prune freed. */
  readonly freedBytes?: number;
  readonly error?: string;
}

export interface RetentionLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Host and paths of the snapshot a run made: its plan's own snapshots are exactly those. */
export type MadeSnapshot = { readonly host: string; readonly paths: readonly string[] };

export interface RetentionStep {
  readonly retention: PlanRetention;
  /**
   * The snapshot the run made, or how to read it from the opened repository (the fleet server, which
   * did not run the backup, reads the snapshot its agent reported).
   */
  readonly made: MadeSnapshot | ((repo: Repository) => Promise<MadeSnapshot>);
  /** Whether this run prunes too. */
  readonly prune: boolean;
  /**
   * After a prune, remove the markers of writers that are gone (as coffer unlock does): for destinations
   * whose writers cannot delete their own (write-only agents'), where nobody else would.
   */
  readonly removeGoneWriters?: boolean;
  readonly signal?: AbortSignal;
  readonly log: RetentionLog;
  /** One line for the user (the CLI's rules, handed down). */
  describeError(err: unknown): string;
}

/** Removes the markers of gone writers under a marker of its own; returns how many writers' markers went. */
async function removeGone(repo: Repository): Promise<number> {
  const session = await WriterSession.start(repo, { command: 'unlock' });
  try {
    return (await removeGoneWriters(session)).filter((w) => w.removed).length;
  } finally {
    await session.end();
  }
}

/** Whether the run that just completed (the `completedRuns`-th) is due a prune. */
export function pruneDue(pruneEvery: number | undefined, completedRuns: number): boolean {
  return pruneEvery !== undefined && completedRuns > 0 && completedRuns % pruneEvery === 0;
}

/** Opens the plan's repository with `open`, applies the step, and closes it. */
export async function applyPlanRetention(open: () => Promise<Repository>, step: RetentionStep): Promise<RetentionReport> {
  const { log } = step;
  try {
    const repo = await open();
    try {
      const made = typeof step.made === 'function' ? await step.made(repo) : step.made;
      const forgot = await forgetSnapshots(repo, { ...planForgetOptions(step.retention, made), sameSourcesAs: made });
      log.info('retention applied', { forgotten: forgot.removed, kept: forgot.groups.flatMap((g) => g.keep.map((k) => k.snapshot.id)) });
      const unchanged = forgot.replicas.filter((r) => r.error);
      for (const r of unchanged) log.warn(`retention: ${r.location} not changed: ${r.error}`);
      if (unchanged.length > 0 && unchanged.length === forgot.replicas.length) return { forgotten: 0, pruned: false, error: `no destination could be changed: ${redactString(unchanged[0]!.error!)}` };
      if (!step.prune) return { forgotten: forgot.removed.length, pruned: false };
      const pruned = await new PruneRun(repo, { ...(step.signal ? { signal: step.signal } : {}), onWarning: (m) => log.warn(`prune: ${m}`) }).run();
      log.info('pruned', { freedBytes: pruned.freedBytes });
      if (step.removeGoneWriters) log.info('removed the markers of writers that are gone', { writers: await removeGone(repo) });
      return { forgotten: forgot.removed.length, pruned: true, freedBytes: pruned.freedBytes };
    } finally {
      await repo.close();
    }
  } catch (err) {
    const error = redactString(step.describeError(err));
    log.error('retention failed', { error });
    return { forgotten: 0, pruned: false, error };
  }
}
