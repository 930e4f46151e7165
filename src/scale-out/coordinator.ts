// The coordinator of a scaled-out backup: splits the sources (by the previous snapshot of the same
// sources, else a scan), queues one job per shard, waits while workers run them, and merges the shards'
// trees into one snapshot. It holds a writer marker from before the first shard until the snapshot is
// written, so a prune in between never takes the shards' packs (they belong to no snapshot until then).
import path from 'node:path';
import { encodeShard, assignments, type ShardPlan } from '../engine/scale-out/shard-plan.ts';
import { mergeShards, planShards, type ShardOutcome } from '../engine/scale-out/scale-out.ts';
import { checkSources, type BackupResult } from '../engine/backup/backup.ts';
import { untilAborted } from '../engine/interrupted.ts';
import type { Selection } from '../engine/backup/selection.ts';
import { WriterSession } from '../repo/writer-markers.ts';
import { whoAmI, type Repository } from '../repo/repository.ts';
import type { ShardQueue } from './shard-queue.ts';

export interface ScaledBackupOptions {
  readonly paths: readonly string[];
  /** How many workers the split is made for (a plan's `workers: N`). */
  readonly workers: number;
  readonly allowPartial?: boolean;
  readonly selection?: Selection;
  readonly oneFileSystem?: boolean;
  readonly tags?: readonly string[];
  readonly host?: string;
  readonly shardsPerWorker?: number;
  readonly minShardWeight?: number;
  readonly signal?: AbortSignal;
  /** Called once the shards are queued (the dashboard follows them by run id). */
  readonly onQueued?: (run: string, plan: ShardPlan) => void;
}

export async function runScaledBackup(repo: Repository, queue: ShardQueue, options: ScaledBackupOptions): Promise<BackupResult> {
  const startedAt = new Date();
  const paths = [...new Set(options.paths.map((p) => path.resolve(p)))].sort();
  // A missing source is reported at once, not after every shard that holds it failed three times.
  checkSources(paths);
  const session = await WriterSession.start(repo, { command: 'backup', onStoreFailure: 'skip' });
  try {
    await repo.loadIndex({ holdBack: session.records });
    const host = options.host ?? whoAmI().host;
    const parent = (await repo.listSnapshots()).filter((s) => s.snapshot.host === host && s.snapshot.paths.length === paths.length && s.snapshot.paths.every((p, i) => p === paths[i])).pop();
    const plan = await planShards(repo, {
      paths,
      workers: options.workers,
      ...(parent ? { parent } : {}),
      ...(options.selection ? { selection: options.selection } : {}),
      ...(options.oneFileSystem !== undefined ? { oneFileSystem: options.oneFileSystem } : {}),
      ...(options.shardsPerWorker ? { shardsPerWorker: options.shardsPerWorker } : {}),
      ...(options.minShardWeight ? { minShardWeight: options.minShardWeight } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const { run, outcomes } = await queue.enqueue(assignments(plan).map(encodeShard), parent?.id);
    options.onQueued?.(run, plan);
    const results: ShardOutcome[] = await untilAborted(outcomes, options.signal);
    return await mergeShards(repo, plan, results, {
      startedAt,
      session,
      host,
      ...(parent ? { parent } : {}),
      ...(options.allowPartial ? { allowPartial: true } : {}),
      ...(options.tags ? { tags: options.tags } : {}),
      ...(options.selection ? { selection: options.selection } : {}),
    });
  } finally {
    await session.end();
  }
}
