// A scaled-out job on its coordinating agent: it splits the plan's sources, hands the shards to the
// server's shard queue for the plan's workers, and merges their trees into one snapshot
// (scale-out/coordinator.ts, the same coordinator as `coffer backup --plan` with workers). The
// job's progress is the run's, from the server's view of its shards.
import os from 'node:os';
import type { BackupProgress } from '../engine/backup/progress.ts';
import type { BackupResult } from '../engine/backup/backup.ts';
import type { Repository } from '../repo/repository.ts';
import { runScaledBackup } from '../scale-out/coordinator.ts';
import type { ServerClient } from './client.ts';
import { ServerShardQueue } from './fleet-shard-queue.ts';
import type { BackupParams, FleetShardStatus, LogLine, ScaleOutParams } from './protocol.ts';

/** A backup as the runner drives it: run it, and read its progress meanwhile. */
export interface BackupExecution {
  execute(): Promise<BackupResult>;
  progress(): BackupProgress;
}

/** The run's progress as a backup's, for the job view (the dashboard shows the shards beside it). */
export function scaledProgress(status: FleetShardStatus | undefined, elapsedMs: number): BackupProgress {
  const filesDone = status?.filesDone ?? 0;
  const bytesDone = status?.bytesDone ?? 0;
  const bytesPerSecond = elapsedMs > 0 ? (bytesDone * 1000) / elapsedMs : 0;
  const over = status !== undefined && status.done + status.failed === status.total;
  return {
    stage: !status ? 'scanning' : over ? 'committing' : 'uploading',
    elapsedMs,
    filesDone,
    bytesDone,
    filesTotal: status?.filesTotal ?? 0,
    bytesTotal: status?.bytesTotal ?? 0,
    totalsKnown: status !== undefined,
    bytesPerSecond,
    ...(status && bytesPerSecond > 0 ? { etaSeconds: Math.max(0, status.bytesTotal - bytesDone) / bytesPerSecond } : {}),
    currentFile: '',
    warnings: 0,
    destinations: [],
    recentFiles: [],
  };
}

export function scaledJob(repo: Repository, client: ServerClient, jobId: string, params: BackupParams & { scaleOut: ScaleOutParams }, signal: AbortSignal, log: (level: LogLine['level'], message: string) => void): BackupExecution {
  const queue = new ServerShardQueue(client, jobId);
  const started = Date.now();
  const { workers, label, allowPartial } = params.scaleOut;
  return {
    progress: () => scaledProgress(queue.latest, Date.now() - started),
    async execute() {
      try {
        const result = await runScaledBackup(repo, queue, {
          paths: params.paths,
          workers,
          selection: { excludes: params.excludes },
          oneFileSystem: params.oneFileSystem,
          tags: params.tags,
          host: os.hostname(),
          signal,
          ...(allowPartial ? { allowPartial } : {}),
          onQueued: (_run, plan) => log('info', `${plan.shards.length} shards queued for ${label !== undefined ? `the agents with label ${label}` : `${workers} agents`}`),
        });
        // The workers' warnings arrive with their shards' results.
        for (const w of result.warnings) log('warn', `${w.path}: ${w.message}`);
        return result;
      } finally {
        queue.stop();
      }
    },
  };
}
