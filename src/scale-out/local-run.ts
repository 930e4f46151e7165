// A scaled-out backup with worker processes on this machine: what both `coffer backup --plan P` and the
// daemon run for a plan with `workers: N`. The shards go through the in-process queue to N forked
// workers (local-workers.ts; fewer when there are fewer shards), which open the stores exactly as the plan's backup does (its bandwidth
// limits, shared among them; its CA certificates; the credentials of its credentialsCommand, all sent
// over IPC). A pause reaches the workers (they claim nothing and pause between files and packs; their
// heartbeats go on); a stop (Ctrl-C, a cancel, a shutdown) kills them before the coordinator lets go of
// its writer marker, so no pack is written after it, and the markers the killed workers left are
// removed. A run whose workers have all died fails at once with one line instead of waiting for shards
// no one will take.
import type { BackupResult } from '../engine/backup/backup.ts';
import type { BackupProgress } from '../engine/backup/progress.ts';
import type { PauseGate } from '../engine/pause-gate.ts';
import { ScaleOutError } from '../engine/scale-out/scale-out.ts';
import type { ShardPlan } from '../engine/scale-out/shard-plan.ts';
import type { Repository } from '../repo/repository.ts';
import { removeMarkersOfGone } from '../repo/writer-markers.ts';
import type { StoreSettings } from '../store/configured-store.ts';
import { workerKeys, type WorkerPause } from './shard-worker-process.ts';
import { runScaledBackup, type ScaledBackupOptions } from './coordinator.ts';
import { startLocalWorkers, stopLocalWorkers, workerGone, type LocalWorker } from './local-workers.ts';
import { MemoryShardQueue, type ShardRunStatus } from './shard-queue.ts';

/** How often a worker heartbeats (the queue takes a shard back after 30 s of silence). */
const HEARTBEAT_MS = 5000;

export interface LocalScaledBackupOptions extends Omit<ScaledBackupOptions, 'onQueued'> {
  /** The repository's locations, for the workers to open it themselves (with its keys, which the coordinator hands them). */
  readonly locations: readonly string[];
  /** How the plan's backup opens its stores; the workers share its bandwidth limits evenly. */
  readonly stores: StoreSettings;
  readonly pause?: PauseGate;
  /** Called once the shards are queued, with how many worker processes take them (at most one per shard). */
  readonly onQueued?: (plan: ShardPlan, workers: number) => void;
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  return items.reduce((n, item) => n + of(item), 0);
}

function ending(w: LocalWorker): string {
  const { pid, exitCode, signalCode } = w.child;
  return `${w.name} ${pid === undefined ? 'could not be started' : signalCode ? `killed by ${signalCode}` : `exit ${exitCode}`}`;
}

export class LocalScaledBackup {
  private readonly repo: Repository;
  private readonly options: LocalScaledBackupOptions;
  private readonly queue = new MemoryShardQueue();
  private readonly startedAt = Date.now();
  private queued?: { run: string; plan: ShardPlan };

  constructor(repo: Repository, options: LocalScaledBackupOptions) {
    this.repo = repo;
    this.options = options;
  }

  /** Where the shards stand; undefined until they are queued. */
  status(): ShardRunStatus | undefined {
    return this.queued && this.queue.status(this.queued.run);
  }

  /** The run's progress as a backup's (the job database and the daemon's status follow it), from the shards' heartbeats. */
  progress(): BackupProgress {
    const elapsedMs = Date.now() - this.startedAt;
    const shards = this.queued?.plan.shards ?? [];
    const filesTotal = sum(shards, (s) => s.files);
    const bytesTotal = sum(shards, (s) => s.bytes);
    const status = this.status();
    // The queue forgets a run once every shard has its outcome: what is left is the merge.
    const settled = status !== undefined && status.done + status.failed + status.running.length + status.waiting.length === 0;
    const left = (of: (x: { files: number; bytes: number; progress?: { filesDone: number; bytesDone: number } }) => number): number =>
      status ? sum(status.waiting, of) + sum(status.running, of) : 0;
    const filesDone = settled ? filesTotal : Math.max(0, filesTotal - left((x) => x.files - (x.progress?.filesDone ?? 0)));
    const bytesDone = settled ? bytesTotal : Math.max(0, bytesTotal - left((x) => x.bytes - (x.progress?.bytesDone ?? 0)));
    return {
      stage: !this.queued ? 'scanning' : settled ? 'committing' : 'packing',
      elapsedMs,
      filesDone,
      bytesDone,
      filesTotal: Math.max(filesTotal, filesDone),
      bytesTotal: Math.max(bytesTotal, bytesDone),
      totalsKnown: this.queued !== undefined,
      bytesPerSecond: elapsedMs > 0 ? (bytesDone * 1000) / elapsedMs : 0,
      currentFile: '',
      warnings: 0,
      destinations: [],
      recentFiles: [],
    };
  }

  /** Runs the backup; the workers are gone when it settles, whichever way. */
  async run(): Promise<BackupResult> {
    const { locations, stores: planStores, pause, signal, onQueued, ...scaled } = this.options;
    // A signal does not cross IPC: a worker's throttled waits end with the worker.
    const { signal: _stop, ...stores } = planStores;
    let workers: LocalWorker[] = [];
    let stopping = false;
    // What stops the coordinator, once the workers are gone: they write packs until then, and the
    // coordinator's writer marker must outlive every one of them.
    const halt = new AbortController();
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      void stopLocalWorkers(workers).then(() => halt.abort());
    };
    if (signal?.aborted) stop();
    signal?.addEventListener('abort', stop, { once: true });
    // Started once the shards are known: no more workers than shards, so the limits are shared by
    // processes that all have work.
    const start = (shards: number): void => {
      const count = Math.min(scaled.workers, shards);
      workers = startLocalWorkers(this.queue, count, {
        locations,
        // The keys this process unwrapped: a worker that derived them again from the passphrase would
        // spend as much CPU on it (Argon2id) as on backing up a small shard.
        keys: workerKeys(this.repo),
        stores: { ...stores, limitShares: count },
        capacity: 1,
        heartbeatMs: HEARTBEAT_MS,
        ...(pause?.paused ? { paused: true } : {}),
      });
      const allGone = (): void => {
        if (stopping || halt.signal.aborted || !workers.every(workerGone)) return;
        halt.abort(new ScaleOutError(`all ${count} worker processes ended before the backup did (${workers.map(ending).join(', ')}); no snapshot was made`));
      };
      for (const w of workers) {
        w.child.once('exit', allGone);
        w.child.once('error', allGone);
      }
    };
    const stopFollowingPause = pause?.onChange((paused) => {
      // With a callback, a worker that died a moment ago is no 'error' event (which would end this process).
      for (const w of workers) if (w.child.connected) w.child.send({ type: paused ? 'pause' : 'resume' } satisfies WorkerPause, () => {});
    });
    try {
      return await runScaledBackup(this.repo, this.queue, {
        ...scaled,
        signal: halt.signal,
        onQueued: (run, plan) => {
          this.queued = { run, plan };
          if (!stopping) start(plan.shards.length);
          onQueued?.(plan, workers.length);
        },
      });
    } catch (err) {
      // The coordinator saw only "stopped"; say why.
      if (halt.signal.reason instanceof ScaleOutError) throw halt.signal.reason;
      throw err;
    } finally {
      stopping = true;
      signal?.removeEventListener('abort', stop);
      stopFollowingPause?.();
      this.queue.stop();
      await stopLocalWorkers(workers);
      // A worker killed in the middle of a shard (a cancel, a crash) could not delete its writer marker.
      await removeMarkersOfGone(this.repo, new Set(workers.flatMap((w) => w.child.pid ?? [])));
    }
  }
}
