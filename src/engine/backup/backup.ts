// A backup run: walks the sources once, hands changed files to the chunk workers, builds one tree per
// directory as soon as its last entry is done, and commits the snapshot on every destination once the
// packs, index and trees it needs are durable there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DEFAULT_ZSTD_LEVEL } from '../../format/compression.ts';
import { ID_BYTES } from '../../format/crypto.ts';
import { NodeType, type NodeMeta, type TreeNode } from '../../format/tree.ts';
import type { Snapshot, SnapshotSummary } from '../../format/snapshot.ts';
import { adoptUnindexedPacks } from '../../repo/adopt.ts';
import { WriterSession } from '../../repo/writer-markers.ts';
import type { Repository, StoredSnapshot } from '../../repo/repository.ts';
import { whoAmI } from '../../repo/repository.ts';
import { DetachedError, Destination } from '../destination.ts';
import { copyMissing, missingFrom, REPOSITORY_DIRS, takeInventory } from '../replicas.ts';
import type { PauseGate } from '../pause-gate.ts';
import { checkSpoolDirectory, DEFAULT_SPOOL_LIMITS, PackSpool, type SpoolLimits } from '../spool.ts';
import { RetryStore } from '../../store/retry.ts';
import type { Store } from '../../store/store.ts';
import { Priorities, type PriorityRule } from './priority.ts';
import { metaOf, nodeTypeOf } from '../fs-meta.ts';
import { siblingModule } from '../sibling-module.ts';
import { ChunkPool, type SealedDataPack } from './chunk-pool.ts';
import type { ChunkPools } from './chunk-pools.ts';
import { snapshotPathsOf, streamNode, streamSnapshotPath, type StreamSource } from './stream-source.ts';
import type { FileResult } from './chunk-protocol.ts';
import type { CountMessage, CountSetup } from './count-worker.ts';
import { PackSink, DEFAULT_SINK_OPTIONS, type CommitOutcome, type SinkOptions } from './pack-sink.ts';
import { ProgressCounters, type BackupProgress, type Warning } from './progress.ts';
import type { Selection } from './selection.ts';
import { entersDirectory, listDirectory, readProblem, sourceExcluded, walkRules, type SourceEntry, type WalkRules } from './source-walk.ts';
import { Breather } from '../breather.ts';
import { TreeSaver } from './tree-saver.ts';
import { sourceTrie, type SourceTrie } from './source-trie.ts';
import { SnapshotView, type TreeSource } from '../snapshot-view.ts';
import { WalkProgress, type DirectoryTally, type Level } from './walk-progress.ts';
import { VERSION } from '../../version.ts';
import { mergeTrees } from '../scale-out/merge.ts';
import { missingOf, type AssignedShard, type ShardPart } from '../scale-out/shard-plan.ts';
import { ShardScope } from '../scale-out/shard-scope.ts';
import { InterruptedError, untilAborted } from '../interrupted.ts';

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;

export interface BackupOptions {
  readonly paths: readonly string[];
  /** Paths to back up (and upload) before the rest; see priority.ts. */
  readonly priorities?: readonly PriorityRule[];
  /** What to leave out: exclude patterns, cache directories, big files (see selection.ts). */
  readonly selection?: Selection;
  /** Read every file again, even those the parent snapshot shows unchanged. */
  readonly forceReread?: boolean;
  readonly oneFileSystem?: boolean;
  readonly tags?: readonly string[];
  readonly host?: string;
  /** Snapshot to compare against; by default the newest one with the same host and paths. */
  readonly parent?: StoredSnapshot | null;
  readonly packSize?: number;
  readonly zstdLevel?: number;
  readonly workers?: number;
  /** Where the chunk worker threads come from when they outlive the run (a worker process's shards); by default the run starts and ends its own. */
  readonly chunkPools?: ChunkPools;
  readonly sink?: SinkOptions;
  readonly spool?: SpoolLimits;
  /** Where packs wait on disk for slow destinations (a fresh directory is made inside). */
  readonly spoolDir?: string;
  readonly signal?: AbortSignal;
  /** While closed, work in hand finishes and nothing new starts (files, packs, uploads); see docs/DAEMON.md. */
  readonly pause?: PauseGate;
  /** Files whose bytes come from a stream (stdin, a database dump) rather than from disk; see stream-source.ts. */
  readonly streams?: readonly StreamSource[];
  /**
   * The run's writer markers (docs/FORMAT.md 12.3); by default the run starts its own. The run loads
   * the index itself, after the markers are durable: callers must not load it before.
   */
  readonly session?: WriterSession;
  /**
   * Back up only these parts of the sources: one shard of a scaled-out backup (scale-out/). Run with
   * runShard(), which writes no snapshot; every shard of one backup is given the same parent.
   */
  readonly shard?: Pick<AssignedShard, 'split' | 'parts' | 'files' | 'bytes'>;
  /** Read no files: merge the trees of a scaled-out backup's shards into its snapshot (scale-out/merge.ts). */
  readonly merge?: MergeInput;
}

export interface MergeInput {
  /** The shards' root trees, in shard order (a split directory's metadata comes from the first that holds it). */
  readonly trees: readonly Buffer[];
  /** The shards' figures, added up into the snapshot's summary. */
  readonly summaries: readonly SnapshotSummary[];
  /** How many split directories the plan had: each shard leaves them out of its count of directories. */
  readonly splitDirs: number;
  /** When the scaled-out backup started: the snapshot's time. */
  readonly startedAt: Date;
  /** Parts of shards that failed, in a plan that allows partial snapshots: the snapshot is marked partial. */
  readonly missing?: readonly ShardPart[];
}

/** One shard's outcome: its root tree (to be merged) and figures. */
export interface ShardResult {
  /** Hex id of the shard's root tree. */
  readonly tree: string;
  readonly summary: SnapshotSummary;
  readonly warnings: readonly Warning[];
  readonly adoptedPacks: number;
  /** Per destination: whether it holds everything the shard stored, or why not. */
  readonly destinations: readonly CommitOutcome[];
}

/** What the run built before it commits: the root tree and where it stands. */
interface Built {
  readonly rootTree: Buffer;
  readonly parent: StoredSnapshot | undefined;
  readonly newTrees: number;
  readonly adoptedPacks: number;
  readonly catchUp: Map<Destination, Promise<void>>;
}

export interface BackupResult {
  readonly snapshotId: string;
  readonly snapshot: Snapshot;
  readonly warnings: readonly Warning[];
  /** Packs found on a store with no index (an interrupted run) and reused. */
  readonly adoptedPacks: number;
  /** Per destination: whether it got the snapshot, or why not. */
  readonly destinations: readonly CommitOutcome[];
  /** Files and directories the exclude patterns left out (sources included). */
  readonly excluded: number;
  /**
   * Wall time of the whole run, to the last destination's commit. The snapshot's own summary.durationMs
   * stops when the snapshot is sealed, before the uploads it waits for.
   */
  readonly durationMs: number;
}

export type FileState = 'new' | 'changed' | 'unmodified';

export class BackupError extends Error {
  override name = 'BackupError';
}

/** A directory whose entries the walk is going through. */
interface WalkFrame {
  readonly entries: { entry: SourceEntry; level: number }[];
  next: number;
  /** The same directory in the parent snapshot, by name (latin1 keeps raw bytes apart). */
  readonly parent: Map<string, TreeNode> | undefined;
  readonly rules: WalkRules;
  readonly state: DirState;
  /** Where the walk stands in this listing, for the "next directory" of progress. */
  readonly position: Level;
}

/** A directory being backed up: done when listed and every child has finished. */
interface DirState {
  readonly children: TreeNode[];
  pending: number;
  listed: boolean;
  readonly finish: (children: TreeNode[]) => void;
  /** Bytes and files below, for the "last completed directory" of progress. */
  readonly tally?: DirectoryTally;
}

interface Counts {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dirs: number;
  totalFiles: number;
  totalBytes: number;
}

/** Refuses sources that do not exist, before anything is read or written. */
export function checkSources(paths: readonly string[]): void {
  for (const p of paths) {
    if (!fs.lstatSync(p, { throwIfNoEntry: false })) throw new BackupError(`source ${p} does not exist; check the path`);
  }
}

export class BackupRun {
  private readonly repo: Repository;
  private readonly options: BackupOptions;
  private readonly counters = new ProgressCounters();
  private readonly walkProgress = new WalkProgress();
  private readonly warnings: Warning[] = [];
  private readonly destinations: Destination[];
  private readonly sink: PackSink;
  private readonly spoolDir: string;
  private readonly spool: PackSpool;
  /** The chunk workers of this run, once started. */
  private readonly priorities: Priorities;
  private readonly paths: string[];
  /** The snapshot's `paths`: the source paths and each stream's /NAME. */
  private readonly snapshotPaths: string[];
  private readonly streams: readonly StreamSource[];
  private readonly breather = new Breather();
  private fatal?: Error;
  /** The parent snapshot's trees (0.1.0 snapshots seen in the absolute layout), while walking. */
  private parentTrees?: TreeSource;
  /**
   * Aborted with the error that stops the run (a worker died, Ctrl-C): ends waits that could otherwise
   * hang (untilStopped), and a stream's producer (a dump) even while it prints nothing.
   */
  private readonly halt = new AbortController();
  /** The stream being read, settled once its producer has gone: a stopped run waits for it. */
  private streamInFlight: Promise<unknown> = Promise.resolve();
  private readonly counts: Counts = { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, totalFiles: 0, totalBytes: 0 };
  private excluded = 0;
  /** In a shard of a scaled-out backup: which entries it records. */
  private readonly scope?: ShardScope;
  onWarning?: (warning: Warning) => void;
  /** Each file as it is done (for -v): new, changed, or unmodified (its parent's chunks reused). */
  onFile?: (path: string, state: FileState) => void;

  constructor(repo: Repository, options: BackupOptions) {
    this.repo = repo;
    this.options = options;
    this.paths = [...new Set(options.paths.map((p) => path.resolve(p)))].sort();
    this.streams = options.streams ?? [];
    this.snapshotPaths = snapshotPathsOf(this.paths, this.streams.map((s) => s.name));
    this.destinations = [...repo.stores, ...repo.unavailable.map((u) => u.store)].map((store) => {
      const destination = new Destination(store, options.pause ? { pause: options.pause } : {});
      if (store instanceof RetryStore) {
        const earlier = store.onRetry;
        store.onRetry = (...args) => {
          earlier?.(...args);
          destination.noteRetry();
        };
      }
      return destination;
    });
    // A replica that could not even be opened takes no part, and says why.
    for (const u of repo.unavailable) this.destinationFor(u.store).detach(new DetachedError(`unreachable: ${u.error.message}`, { cause: u.error }));
    this.spoolDir = checkSpoolDirectory(options.spoolDir ?? os.tmpdir());
    this.spool = new PackSpool(this.spoolDir, options.spool ?? DEFAULT_SPOOL_LIMITS);
    this.sink = new PackSink(repo, this.destinations, this.spool, options.sink ?? DEFAULT_SINK_OPTIONS);
    this.priorities = new Priorities(options.priorities ?? []);
    if (options.shard) this.scope = new ShardScope(options.shard);
    options.signal?.addEventListener('abort', () => this.halt.abort(new InterruptedError('interrupted')), { once: true });
  }

  private destinationFor(store: Store): Destination {
    return this.destinations.find((d) => d.store === store)!;
  }

  /** Called as each destination gets the snapshot (a fast one long before a slow one). */
  onCommitted?: (location: string) => void;

  progress(): BackupProgress {
    return this.counters.snapshot(this.destinations.map((d) => d.status()), this.walkProgress.details());
  }

  private warn(pathBytes: Buffer | string, message: string): void {
    const warning = { path: pathBytes.toString(), message };
    this.warnings.push(warning);
    this.counters.warnings++;
    this.onWarning?.(warning);
  }

  private checkAlive(): void {
    if (this.fatal) throw this.fatal;
    if (this.options.signal?.aborted) throw new InterruptedError('interrupted');
  }

  /** `work`, or the error that stopped the run as soon as it is stopped. */
  private untilStopped<T>(work: Promise<T>): Promise<T> {
    return untilAborted(work, this.halt.signal, (signal) => signal.reason);
  }

  /** Waits while the run is paused (the heartbeat goes on meanwhile); then checks it should go on. */
  private async unlessPaused(): Promise<void> {
    // Until stopped: a run that failed while paused must not wait for a resume to end.
    if (this.options.pause?.paused) await this.untilStopped(this.options.pause.wait(this.options.signal));
    this.checkAlive();
  }

  async run(): Promise<BackupResult> {
    if (this.options.shard) throw new BackupError('a shard of a scaled-out backup is run with runShard()');
    return this.withSession(async (session, startTime) => {
      const built = await this.build(session);
      try {
        const snapshot = this.makeSnapshot(startTime, built);
        const sealed = this.repo.sealSnapshot(snapshot);
        // 'uploading' until a destination holds everything the snapshot needs and starts writing it.
        const destinations = await this.untilStopped(
          this.sink.commit(sealed, built.catchUp, {
            beforeSnapshot: (store) => session.fence(store),
            committing: () => (this.counters.stage = 'committing'),
            committed: (d) => this.onCommitted?.(d.store.location),
          }),
        );
        this.counters.stage = 'done';
        return {
          snapshotId: sealed.name.slice('snapshots/'.length),
          snapshot,
          warnings: this.warnings,
          adoptedPacks: built.adoptedPacks,
          destinations,
          excluded: this.excluded,
          durationMs: Date.now() - startTime.getTime(),
        };
      } catch (err) {
        await this.sink.abort(err as Error);
        throw err;
      }
    });
  }

  /**
   * Backs up the parts of `options.shard`, one shard of a scaled-out backup: its packs, trees and index
   * files reach every destination, but no snapshot is written; the merge makes it from the shards' trees.
   */
  async runShard(): Promise<ShardResult> {
    if (!this.options.shard) throw new BackupError('runShard needs the shard option');
    return this.withSession(async (session, startTime) => {
      const built = await this.build(session);
      try {
        this.counters.stage = 'committing';
        const destinations = await this.untilStopped(this.sink.settle(built.catchUp));
        this.counters.stage = 'done';
        return { tree: built.rootTree.toString('hex'), summary: this.summary(startTime, built.newTrees), warnings: this.warnings, adoptedPacks: built.adoptedPacks, destinations };
      } catch (err) {
        await this.sink.abort(err as Error);
        throw err;
      }
    });
  }

  private async withSession<T>(body: (session: WriterSession, startTime: Date) => Promise<T>): Promise<T> {
    const startTime = this.options.merge?.startedAt ?? new Date();
    try {
      if (!this.options.merge) checkSources(this.paths);
      this.checkStreamNames();
      const session = this.options.session ?? (await WriterSession.start(this.repo, { command: 'backup', onStoreFailure: 'skip' }));
      try {
        for (const [store, err] of session.failed) this.destinationFor(store).detach(new DetachedError(`cannot write a writer marker: ${err.message}`, { cause: err }));
        await this.repo.loadIndex({ holdBack: session.records });
        return await body(session, startTime);
      } finally {
        if (!this.options.session) await session.end();
      }
    } finally {
      this.spool.close();
    }
  }

  /** Everything up to the root tree: destinations prepared, sources walked (or shards merged), packs sealed. */
  private async build(session: WriterSession): Promise<Built> {
    const { adoptedPacks, catchUp } = await this.prepareDestinations(session);
    const parent = this.options.parent === undefined ? await this.findParent() : (this.options.parent ?? undefined);
    const packSize = this.options.packSize ?? DEFAULT_PACK_SIZE;
    const merge = this.options.merge;
    const walker = merge ? undefined : { counter: this.startCounter(parent), pool: this.startPool(packSize) };
    const trees = new TreeSaver(this.repo, packSize, (pack) => this.sink.add(pack));
    try {
      this.counters.stage = 'packing';
      // Until stopped: a walk waiting for workers that a paused run holds still would never see the abort.
      const rootTree = await this.untilStopped(walker ? this.walkSources(walker.pool, trees, parent) : this.mergeShards(merge!, trees));
      if (walker) await this.untilStopped(walker.pool.flush());
      this.counters.walkEnded();
      trees.flush();
      this.counters.stage = 'uploading';
      return { rootTree, parent, newTrees: trees.newTrees, adoptedPacks, catchUp };
    } catch (err) {
      // A cancelled job has no dump left running once it is reported cancelled.
      await this.streamInFlight;
      await this.sink.abort(err as Error);
      throw err;
    } finally {
      if (walker) await (this.options.chunkPools ? this.options.chunkPools.release(walker.pool) : walker.pool.close());
      await walker?.counter?.terminate();
    }
  }

  private startPool(packSize: number): ChunkPool {
    const setup = {
      chunkerSeed: this.repo.keys.chunkerSeed,
      chunker: this.repo.config.chunker,
      idKey: this.repo.keys.idKey,
      dataKey: this.repo.keys.dataKey,
      packSize,
      zstdLevel: this.options.zstdLevel ?? DEFAULT_ZSTD_LEVEL,
      spoolDir: this.spoolDir,
      ...(this.options.pause ? { pause: this.options.pause.shared } : {}),
    };
    const events = {
      onPack: (pack: SealedDataPack) => this.sink.add(pack, pack.priority),
      onRead: (bytes: number) => (this.counters.bytesDone += bytes),
      onFatal: (err: Error) => {
        this.fatal ??= new BackupError(`chunk worker failed: ${err.message}`);
        this.halt.abort(this.fatal);
      },
    };
    const pools = this.options.chunkPools;
    const pool = pools ? pools.take(setup, this.repo.index, events, this.options.workers) : new ChunkPool(setup, this.repo.index, events, this.options.workers);
    this.sink.onBacklog = (everyoneBehind) => pool.holdPacks(everyoneBehind);
    return pool;
  }

  /** The snapshot's root from the shards' trees; the shards' counts become the snapshot's. */
  private async mergeShards(merge: MergeInput, trees: TreeSaver): Promise<Buffer> {
    for (const s of merge.summaries) {
      for (const k of Object.keys(this.counts) as (keyof Counts)[]) this.counts[k] += s[k];
      this.counters.filesDone += s.totalFiles;
      this.counters.bytesDone += s.totalBytes;
    }
    this.counts.dirs += merge.splitDirs;
    return mergeTrees(this.repo, merge.trees, { save: (nodes) => trees.save(nodes), warn: (p, message) => this.warn(p, message), ...(this.options.signal ? { signal: this.options.signal } : {}) });
  }

  /**
   * Lists every reachable replica once: adopts packs an interrupted run left unindexed, and starts
   * copying to each destination whatever the other replicas hold and it lacks, so its new snapshot
   * never points at packs only the others have (invariant 3). A lone replica has no other to catch up
   * with: only its packs are listed (for adoption), not the folders the repository listed as it opened.
   */
  private async prepareDestinations(session: WriterSession): Promise<{ adoptedPacks: number; catchUp: Map<Destination, Promise<void>> }> {
    const live = this.repo.stores.filter((store) => !this.destinationFor(store).detached);
    const dirs = live.length > 1 ? REPOSITORY_DIRS : ['data'];
    const replicas = await Promise.all(live.map(async (store) => ({ store, inventory: await takeInventory(store, dirs) })));
    const records = session.records;
    let adoptedPacks = 0;
    for (const { store, inventory } of replicas) {
      // A doomed pack is never adopted: this writer must not refer to it (FORMAT.md 12.3).
      const packs = [...inventory].filter(([name]) => name.startsWith('data/') && !records.deletes(name)).map(([name, size]) => ({ name, size }));
      const adopted = await adoptUnindexedPacks(this.repo, store, packs);
      adoptedPacks += adopted.packs;
      if (adopted.index) inventory.set(adopted.index.name, adopted.index.size);
      // Not the sources' fault: reported as repository damage, not counted among the files left out.
      for (const d of adopted.damaged) this.repo.onDamaged?.(d.name, `it is not a pack that can be read (${d.reason}); it is left alone`);
    }
    const catchUp = new Map<Destination, Promise<void>>();
    for (const replica of replicas) {
      // Forgotten snapshots never come back. Doomed packs and superseded index files do, when a replica
      // that missed a prune still has them: a snapshot it got meanwhile may need them, and only a prune
      // can tell (it deletes them again if not).
      const missing = missingFrom(replica.inventory, replicas.filter((r) => r !== replica), (name) => records.forgets(name));
      if (missing.length === 0) continue;
      const copying = copyMissing(this.destinationFor(replica.store), missing);
      copying.catch(() => {});
      catchUp.set(this.destinationFor(replica.store), copying);
    }
    return { adoptedPacks, catchUp };
  }

  private async findParent(): Promise<StoredSnapshot | undefined> {
    const host = this.options.host ?? whoAmI().host;
    const same = (await this.repo.listSnapshots()).filter(
      (s) => s.snapshot.host === host && s.snapshot.paths.length === this.snapshotPaths.length && s.snapshot.paths.every((p, i) => p === this.snapshotPaths[i]),
    );
    return same[same.length - 1];
  }

  /**
   * Counts the sources for the ETA, on a first backup only. A shard's totals are the split's estimate;
   * with a parent snapshot they are its totals: a second walk of the sources on its own thread would
   * cost about a third of a no-change backup's CPU and an isolate's memory (bench/PROFILE.md).
   */
  private startCounter(parent: StoredSnapshot | undefined): Worker | undefined {
    const shard = this.options.shard;
    if (shard) {
      this.counters.filesTotal = shard.files;
      this.counters.bytesTotal = shard.bytes;
      return undefined;
    }
    if (parent) {
      this.counters.estimateTotals(parent.snapshot.summary.totalFiles, parent.snapshot.summary.totalBytes);
      return undefined;
    }
    const setup: CountSetup = { paths: this.paths, selection: this.options.selection ?? {}, oneFileSystem: this.options.oneFileSystem ?? false };
    const worker = new Worker(siblingModule(import.meta.url, 'count-worker'), { workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.on('message', (m: CountMessage) => {
      this.counters.counted(m.files, m.bytes, m.done);
      this.walkProgress.addSizes(m.dirs);
    });
    // Totals only feed the ETA: a counter that fails leaves the backup running without one.
    worker.on('error', () => {});
    return worker;
  }

  /**
   * Walks every source; resolves with the root tree's id once every file and directory is done. The
   * root tree is the file system's root: each source sits at its full path, below directories that
   * hold only what leads to the sources (with their own metadata, as restic records them).
   */
  private async walkSources(pool: ChunkPool, trees: TreeSaver, parent: StoredSnapshot | undefined): Promise<Buffer> {
    const rules = walkRules(this.options.selection ?? {});
    const parentView = parent ? await this.openParent(parent) : undefined;
    this.parentTrees = parentView;
    const parentRoot = parentView ? await this.loadParentTree(parentView.root) : undefined;
    let rootDone!: (id: Buffer) => void;
    const rootId = new Promise<Buffer>((resolve) => (rootDone = resolve));
    const root: DirState = { children: [], pending: 0, listed: false, finish: (children) => rootDone(trees.save(children)) };
    for (const stream of this.streams) {
      root.pending++;
      const reading = this.backupStream(stream, pool, parentRoot?.get(Buffer.from(stream.name).toString('latin1')));
      this.streamInFlight = reading.catch(() => {});
      this.childDone(root, await reading);
    }
    const sources = sourceTrie(this.paths);
    const rulesFor = (stat: fs.BigIntStats): WalkRules => (this.options.oneFileSystem ? { ...rules, rootDevice: stat.dev } : rules);
    if (sources.source) {
      // Backing up "/": the root's entries are the snapshot's top level.
      await this.walk(this.openDirectory(Buffer.from('/'), parentRoot, rulesFor(fs.lstatSync('/', { bigint: true })), root), pool, trees);
    } else {
      await this.walkSourceTrie(sources, parentRoot, rulesFor, pool, trees, root);
    }
    // With "/" the walk itself finished the root's listing.
    if (!root.listed) {
      root.listed = true;
      this.finishIfDone(root);
    }
    return this.untilStopped(rootId);
  }

  /** The directories that lead to the sources, and the sources themselves, highest priority first. */
  private async walkSourceTrie(
    at: SourceTrie,
    parent: Map<string, TreeNode> | undefined,
    rulesFor: (stat: fs.BigIntStats) => WalkRules,
    pool: ChunkPool,
    trees: TreeSaver,
    into: DirState,
  ): Promise<void> {
    const children = [...at.children.entries()].map(([name, child]) => ({ name, child, level: this.priorities.levelOf(child.path) }));
    children.sort((a, b) => b.level - a.level);
    for (const { name, child, level } of children) {
      this.checkAlive();
      const previous = parent?.get(Buffer.from(name).toString('latin1'));
      const stat = fs.lstatSync(child.path, { bigint: true });
      const entry: SourceEntry = { name: Buffer.from(name), path: Buffer.from(child.path), stat };
      if (child.source) {
        if (this.scope && !this.scope.keepsSource(entry.path, stat.isDirectory())) continue;
        const rules = rulesFor(stat);
        // A source that matches an exclude pattern itself is left out, as restic does.
        if (sourceExcluded(child.path, rules.exclude)) {
          this.excluded++;
          continue;
        }
        const below = await this.backupEntry(entry, previous, rules, pool, trees, into, level);
        if (below) await this.walk(below, pool, trees);
        continue;
      }
      // A directory on the way to a source; a symlink on the way is recorded as the directory it leads to.
      if (this.scope && !this.scope.leadsTo(child.path)) continue;
      const meta = metaOf(stat.isDirectory() ? stat : fs.statSync(child.path, { bigint: true }), NodeType.Dir);
      into.pending++;
      const state: DirState = { children: [], pending: 0, listed: false, finish: (nodes) => this.childDone(into, { ...meta, name: entry.name, subtree: trees.save(nodes) }) };
      const parentTree = previous?.type === NodeType.Dir && previous.subtree ? await this.loadParentTree(previous.subtree) : undefined;
      await this.walkSourceTrie(child, parentTree, rulesFor, pool, trees, state);
      state.listed = true;
      this.finishIfDone(state);
    }
  }

  private async openParent(parent: StoredSnapshot): Promise<SnapshotView | undefined> {
    try {
      return await SnapshotView.open(this.repo, parent.snapshot);
    } catch (err) {
      this.warn(parent.id, `cannot read the parent snapshot's tree, files are read again: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Stream names are top-level names: they must not be used twice or by a source path. */
  private checkStreamNames(): void {
    const sources = sourceTrie(this.paths);
    const taken = new Set(sources.children.keys());
    for (const { name } of this.streams) {
      // Backing up "/" makes its entries the top level.
      const clash = taken.has(name) || (sources.source && fs.lstatSync(`/${name}`, { throwIfNoEntry: false }) !== undefined);
      if (clash) throw new BackupError(`the streamed file ${name} would have the same name as a backed-up path at the top of the snapshot; give it another name`);
      taken.add(name);
    }
  }

  /**
   * Reads one stream to its end into the chunk workers. If its producer fails (a dump that exits
   * non-zero), the run fails: no snapshot is committed with a half stream in it.
   */
  private async backupStream(stream: StreamSource, pool: ChunkPool, previous: TreeNode | undefined): Promise<TreeNode> {
    this.counters.stage = 'dumping';
    this.counters.streaming = true;
    this.counters.currentFile = streamSnapshotPath(stream.name);
    const writer = pool.openStream(this.priorities.levelOf(streamSnapshotPath(stream.name)));
    const source = stream.open(this.halt.signal);
    try {
      for await (const bytes of source) {
        await this.unlessPaused();
        await this.untilStopped(writer.write(bytes));
        this.counters.bytesDone += bytes.length;
      }
    } catch (err) {
      writer.abort();
      if (err instanceof InterruptedError || this.options.signal?.aborted || this.fatal) throw err;
      throw new BackupError(`${streamSnapshotPath(stream.name)}: ${(err as Error).message}; no snapshot was made`, { cause: err });
    }
    const { content, size } = await this.untilStopped(writer.end());
    this.counters.stage = 'packing';
    this.counters.streaming = false;
    this.counters.filesDone++;
    this.counts.totalFiles++;
    this.counts.totalBytes += size;
    if (previous) this.counts.filesChanged++;
    else this.counts.filesNew++;
    return streamNode(stream.name, content, size);
  }

  private async loadParentTree(id: Buffer): Promise<Map<string, TreeNode> | undefined> {
    try {
      return new Map((await this.parentTrees!.loadTree(id)).map((n) => [n.name.toString('latin1'), n]));
    } catch (err) {
      this.warn(id.toString('hex'), `cannot read the parent snapshot's tree, files below are read again: ${(err as Error).message}`);
      return undefined;
    }
  }

  private finishIfDone(dir: DirState): void {
    if (dir.listed && dir.pending === 0) dir.finish(dir.children);
  }

  private childDone(dir: DirState, node: TreeNode | undefined): void {
    if (node) dir.children.push(node);
    if (node?.type === NodeType.File && dir.tally) {
      dir.tally.bytes += node.size;
      dir.tally.files++;
    }
    dir.pending--;
    this.finishIfDone(dir);
  }

  /**
   * Backs up the entries of `first` and of every directory below it, depth first with an explicit
   * stack: a source tree thousands of levels deep must not overflow the call stack.
   */
  private async walk(first: WalkFrame, pool: ChunkPool, trees: TreeSaver): Promise<void> {
    const stack = [first];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const item = frame.entries[frame.next++];
      if (!item) {
        stack.pop();
        this.walkProgress.leave(frame.position);
        frame.state.listed = true;
        this.finishIfDone(frame.state);
        continue;
      }
      frame.position.index = frame.next - 1;
      this.checkAlive();
      await this.breather.pause();
      const previous = frame.parent?.get(item.entry.name.toString('latin1'));
      const below = await this.backupEntry(item.entry, previous, frame.rules, pool, trees, frame.state, item.level);
      if (below) stack.push(below);
    }
  }

  /** Lists a directory whose entries go into `state`; what cannot be read is a warning. */
  private openDirectory(dirPath: Buffer, parent: Map<string, TreeNode> | undefined, rules: WalkRules, state: DirState): WalkFrame {
    const listing = listDirectory(dirPath, rules);
    // In a shard, the entries of a split directory that other shards record are left to them.
    const scope = this.scope;
    const kept = scope?.isSplit(dirPath) ? listing.entries.filter((e) => scope.keeps(dirPath, e, e.stat.isDirectory() && entersDirectory(e.stat, rules))) : listing.entries;
    this.excluded += listing.excluded;
    if (listing.error) this.warn(dirPath, `cannot read directory: ${readProblem(listing.error.code, listing.error.message)}`);
    for (const { path, error } of listing.unreadable) this.warn(path, `not backed up: ${readProblem(error.code, error.message)}`);
    const entries = this.priorities.order(kept);
    return { entries, next: 0, parent, rules, state, position: this.walkProgress.enter(entries.map((o) => o.entry)) };
  }

  private async backupEntry(
    entry: SourceEntry,
    previous: TreeNode | undefined,
    rules: WalkRules,
    pool: ChunkPool,
    trees: TreeSaver,
    into: DirState,
    level: number,
  ): Promise<WalkFrame | undefined> {
    const type = nodeTypeOf(entry.stat);
    if (type === undefined) return undefined;
    const meta = metaOf(entry.stat, type);
    into.pending++;
    switch (type) {
      case NodeType.File:
        await this.backupFile(entry, meta, previous, pool, level, (node) => this.childDone(into, node));
        return undefined;
      case NodeType.Dir: {
        // A split directory is walked by several shards: the merge counts it once.
        if (!this.scope?.isSplit(entry.path)) this.counts.dirs++;
        const tooBig = (): void => this.warn(entry.path, 'its entries are not backed up: there are more than one directory of a snapshot may hold (4 million, or 256 MiB of tree)');
        const node = (children: TreeNode[]): TreeNode => ({ ...meta, name: entry.name, subtree: trees.save(children, tooBig) });
        const tally = this.walkProgress.startDirectory();
        const state: DirState = {
          children: [],
          pending: 0,
          listed: false,
          tally,
          finish: (children) => {
            this.walkProgress.directoryDone(entry.path, tally, into.tally);
            this.childDone(into, node(children));
          },
        };
        if (entersDirectory(entry.stat, rules)) {
          const parentTree = previous?.type === NodeType.Dir && previous.subtree ? await this.loadParentTree(previous.subtree) : undefined;
          return this.openDirectory(entry.path, parentTree, rules, state);
        }
        state.listed = true;
        this.finishIfDone(state);
        return undefined;
      }
      case NodeType.Symlink: {
        let linkTarget: Buffer;
        try {
          linkTarget = fs.readlinkSync(entry.path, { encoding: 'buffer' });
        } catch (err) {
          const error = err as NodeJS.ErrnoException;
          this.warn(entry.path, `cannot read symlink: ${readProblem(error.code, error.message)}`);
          this.childDone(into, undefined);
          return undefined;
        }
        this.childDone(into, { ...meta, name: entry.name, linkTarget });
        return undefined;
      }
      case NodeType.CharDevice:
      case NodeType.BlockDevice:
        this.childDone(into, { ...meta, name: entry.name, rdev: entry.stat.rdev });
        return undefined;
      default:
        this.childDone(into, { ...meta, name: entry.name });
        return undefined;
    }
  }

  private async backupFile(
    entry: SourceEntry,
    meta: NodeMeta,
    previous: TreeNode | undefined,
    pool: ChunkPool,
    level: number,
    done: (node: TreeNode | undefined) => void,
  ): Promise<void> {
    this.counts.totalFiles++;
    this.counts.totalBytes += meta.size;
    if (
      !this.options.forceReread &&
      previous?.type === NodeType.File &&
      previous.size === meta.size &&
      previous.mtimeNs === meta.mtimeNs &&
      previous.ctimeNs === meta.ctimeNs &&
      previous.inode === meta.inode &&
      // The parent's chunks must still be in the index: one whose only copy a prune has doomed is not
      // referred to again (FORMAT.md 12.3); the file is read and the chunk stored anew.
      this.allIndexed(previous.content)
    ) {
      this.counts.filesUnmodified++;
      this.counters.filesDone++;
      this.walkProgress.fileDone(entry.path);
      this.counters.bytesDone += meta.size;
      this.onFile?.(entry.path.toString(), 'unmodified');
      done({ ...meta, name: entry.name, content: previous.content!, sparse: previous.sparse ?? false });
      return;
    }
    await this.sink.backpressure();
    await pool.ready();
    await this.unlessPaused();
    this.counters.currentFile = entry.path.toString();
    pool.submit(entry.path, meta, level, (result: FileResult) => {
      this.counters.filesDone++;
      this.walkProgress.fileDone(entry.path);
      if (!result.ok) {
        this.warn(entry.path, `not backed up: ${readProblem(result.code, result.message)}`);
        done(undefined);
        return;
      }
      if (result.unstable) this.warn(entry.path, 'kept changing while being read; the last version read is stored');
      if (previous) this.counts.filesChanged++;
      else this.counts.filesNew++;
      this.onFile?.(entry.path.toString(), previous ? 'changed' : 'new');
      done({ ...(result.meta ?? meta), size: result.size, name: entry.name, content: result.content, sparse: result.sparse });
    });
  }

  /** Whether every chunk of a concatenated id list is in the (writer's) index. */
  private allIndexed(content: Buffer | undefined): boolean {
    if (!content) return true;
    for (let i = 0; i < content.length; i += ID_BYTES) if (!this.repo.index.has(content.subarray(i, i + ID_BYTES))) return false;
    return true;
  }

  private makeSnapshot(startTime: Date, built: Built): Snapshot {
    const who = whoAmI();
    const missing = this.options.merge?.missing ?? [];
    return {
      version: 1,
      layout: 'absolute',
      time: startTime.toISOString(),
      host: this.options.host ?? who.host,
      user: who.user,
      paths: this.snapshotPaths,
      tags: [...(this.options.tags ?? [])].sort(),
      tree: built.rootTree.toString('hex'),
      ...(built.parent ? { parent: built.parent.id } : {}),
      program: `coffer ${VERSION}`,
      summary: this.summary(startTime, built.newTrees),
      ...(missing.length > 0 ? { partial: { missing: missing.map(missingOf) } } : {}),
    };
  }

  /** This run's figures; a merge adds those of its shards. */
  private summary(startTime: Date, newTrees: number): SnapshotSummary {
    const shards = this.options.merge?.summaries ?? [];
    const sum = (k: 'dataBlobs' | 'treeBlobs' | 'bytesAdded' | 'warnings'): number => shards.reduce((n, s) => n + s[k], 0);
    return {
      ...this.counts,
      dataBlobs: this.sink.dataBlobs + sum('dataBlobs'),
      treeBlobs: newTrees + sum('treeBlobs'),
      bytesAdded: this.sink.bytesAdded + sum('bytesAdded'),
      warnings: this.warnings.length + sum('warnings'),
      durationMs: Date.now() - startTime.getTime(),
    };
  }
}
