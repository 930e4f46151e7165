// A scaled-out backup in three steps, whoever runs them: the coordinator plans the shards (split.ts),
// workers back up one shard each into the shared repository (no snapshot; objects are write-once, so no
// lock), and the coordinator merges the shards' trees into one snapshot (merge.ts). The job engines
// (in-process queue, pg-boss) only carry the shards and their results between these steps.
//
// The coordinator holds a writer marker (FORMAT.md 12.3) from before the first shard starts until the
// snapshot is written: the shards' packs belong to no snapshot until the merge, and a prune running in
// between must not take them.
import path from 'node:path';
import type { SnapshotSummary } from '../../format/snapshot.ts';
import type { Repository, StoredSnapshot } from '../../repo/repository.ts';
import type { WriterSession } from '../../repo/writer-markers.ts';
import { BackupError, BackupRun, type BackupOptions, type BackupResult, type ShardResult } from '../backup/backup.ts';
import type { Warning } from '../backup/progress.ts';
import { SnapshotView } from '../snapshot-view.ts';
import { describePart, type AssignedShard, type ShardPart, type ShardPlan } from './shard-plan.ts';
import { Splitter, type SplitOptions } from './split.ts';

export interface PlanOptions extends Omit<SplitOptions, 'parent' | 'paths'> {
  readonly paths: readonly string[];
  /** The previous snapshot of the same sources (weights from it), or none. */
  readonly parent?: StoredSnapshot;
}

/** Splits the sources into shards, by the parent snapshot's sizes if there is one, else by a scan. */
export async function planShards(repo: Repository, options: PlanOptions): Promise<ShardPlan> {
  const paths = [...new Set(options.paths.map((p) => path.resolve(p)))].sort();
  const parent = options.parent ? await SnapshotView.open(repo, options.parent.snapshot).catch(() => undefined) : undefined;
  const { parent: _stored, ...rest } = options;
  return new Splitter({ ...rest, paths, ...(parent ? { parent } : {}) }).plan();
}

/** Options of one shard's run: those of a backup, less what the plan decides. */
export type ShardRunOptions = Omit<BackupOptions, 'paths' | 'shard' | 'merge' | 'parent' | 'streams'>;

/** The run of one shard (its runShard() backs it up and resolves with its root tree and figures). */
export function shardRun(repo: Repository, shard: AssignedShard, parent: StoredSnapshot | undefined, options: ShardRunOptions = {}): BackupRun {
  return new BackupRun(repo, { ...options, paths: shard.paths, shard, parent: parent ?? null });
}

/** A shard reports at most this many warnings by name (its result travels through a job queue). */
export const MAX_SHARD_WARNINGS = 1000;

/** A shard's warnings as they came through the queue: only well-formed ones, at most MAX_SHARD_WARNINGS. */
function shardWarnings(outcome: ShardOutcome): Warning[] {
  if (!outcome.ok || !Array.isArray(outcome.warnings)) return [];
  const valid = outcome.warnings.filter((w: Partial<Warning> | null) => typeof w?.path === 'string' && typeof w.message === 'string');
  return valid.slice(0, MAX_SHARD_WARNINGS).map((w) => ({ path: w.path, message: w.message }));
}

/** A shard's result as the coordinator keeps it. */
export function outcomeOf(result: ShardResult): ShardOutcome {
  return { ok: true, tree: result.tree, summary: result.summary, adoptedPacks: result.adoptedPacks, warnings: result.warnings.slice(0, MAX_SHARD_WARNINGS) };
}

/** How one shard ended, as the coordinator learns it. */
export type ShardOutcome =
  | {
      readonly ok: true;
      readonly tree: string;
      readonly summary: SnapshotSummary;
      /** Packs an earlier run of the shard (a worker that died) left unindexed, taken over instead of uploaded again. */
      readonly adoptedPacks?: number;
      /** What could not be backed up (the first MAX_SHARD_WARNINGS; the summary counts them all). */
      readonly warnings?: readonly Warning[];
    }
  | { readonly ok: false; readonly error: string };

export class ScaleOutError extends BackupError {
  override name = 'ScaleOutError';
}

export interface MergeOptions extends Omit<BackupOptions, 'paths' | 'shard' | 'merge' | 'parent' | 'streams' | 'session'> {
  /** Merge what succeeded into a snapshot marked partial, which lists what is missing. */
  readonly allowPartial?: boolean;
  readonly parent?: StoredSnapshot;
  readonly startedAt: Date;
  /** The coordinator's writer session, held since before the shards started. */
  readonly session?: WriterSession;
}

/**
 * Merges the shards into one snapshot. A failed shard fails the snapshot with a report of every failed
 * shard's parts and error, unless the plan allows partial snapshots.
 */
export async function mergeShards(repo: Repository, plan: ShardPlan, outcomes: readonly ShardOutcome[], options: MergeOptions): Promise<BackupResult> {
  if (outcomes.length !== plan.shards.length) throw new ScaleOutError(`the merge got ${outcomes.length} shard results for ${plan.shards.length} shards`);
  // Results come back through a job queue: a tree id that is not one is a failed shard.
  const checked = outcomes.map((o): ShardOutcome => (o.ok && !/^[0-9a-f]{64}$/.test(o.tree) ? { ok: false, error: 'its result has no valid tree id' } : o));
  const failed = checked.flatMap((o, i) => (o.ok ? [] : [{ shard: i, error: o.error, parts: plan.shards[i]!.parts }]));
  if (failed.length > 0 && (!options.allowPartial || failed.length === outcomes.length)) {
    const lines = failed.map((f) => `shard ${f.shard + 1} of ${outcomes.length} (${f.parts.map(describePart).join('; ')}): ${f.error}`);
    const why = failed.length === outcomes.length ? 'every shard failed' : `${failed.length} of ${outcomes.length} shards failed`;
    throw new ScaleOutError(`no snapshot was made: ${why}: ${lines.join(' | ')}${options.allowPartial ? '' : '; a plan may allow partial snapshots (allowPartial)'}`);
  }
  const done = checked.flatMap((o) => (o.ok ? [o] : []));
  const missing: ShardPart[] = failed.flatMap((f) => [...f.parts]);
  const { allowPartial: _allowPartial, startedAt, ...rest } = options;
  const run = new BackupRun(repo, {
    ...rest,
    paths: plan.paths,
    parent: options.parent ?? null,
    merge: { trees: done.map((o) => Buffer.from(o.tree, 'hex')), summaries: done.map((o) => o.summary), splitDirs: plan.split.length, startedAt, missing },
  });
  const result = await run.run();
  // The shards' warnings first, in shard order: the merge's own (a directory that changed type) come last.
  return { ...result, warnings: [...done.flatMap(shardWarnings), ...result.warnings] };
}
