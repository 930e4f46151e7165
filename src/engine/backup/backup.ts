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
import type { Snapshot } from '../../format/snapshot.ts';
import { adoptUnindexedPacks } from '../../repo/adopt.ts';
import { WriterSession } from '../../repo/writer-markers.ts';
import type { Repository, StoredSnapshot } from '../../repo/repository.ts';
import { whoAmI } from '../../repo/repository.ts';
import { DetachedError, Destination } from '../destination.ts';
import { copyMissing, missingFrom, takeInventory } from '../replicas.ts';
import type { PauseGate } from '../pause-gate.ts';
import { DEFAULT_SPOOL_LIMITS, PackSpool, type SpoolLimits } from '../spool.ts';
import { RetryStore } from '../../store/retry.ts';
import type { Store } from '../../store/store.ts';
import { Priorities, type PriorityRule } from './priority.ts';
import { metaOf, nodeTypeOf } from '../fs-meta.ts';
import { siblingModule } from '../sibling-module.ts';
import { ChunkPool } from './chunk-pool.ts';
import { streamNode, streamSnapshotPath, type StreamSource } from './stream-source.ts';
import type { FileResult } from './chunk-protocol.ts';
import type { CountMessage, CountSetup } from './count-worker.ts';
import { PackSink, DEFAULT_SINK_OPTIONS, type CommitOutcome, type SinkOptions } from './pack-sink.ts';
import { ProgressCounters, type BackupProgress, type Warning } from './progress.ts';
import type { Selection } from './selection.ts';
import { entersDirectory, listDirectory, readProblem, sourceExcluded, walkRules, type SourceEntry, type WalkRules } from './source-walk.ts';
import { Breather } from '../breather.ts';
import { TreeSaver } from './tree-saver.ts';
import { pathParts, SnapshotView, type TreeSource } from '../snapshot-view.ts';
import { WalkProgress, type DirectoryTally, type Level } from './walk-progress.ts';
import { VERSION } from '../../version.ts';

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

export class InterruptedError extends Error {
  override name = 'InterruptedError';
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

/** The sources as a tree of path components: the directories above them and the sources themselves. */
interface SourceTrie {
  readonly path: string;
  readonly children: Map<string, SourceTrie>;
  source: boolean;
}

/** Sources inside another source are left to the outer one (they are in its tree already). */
function sourceTrie(paths: readonly string[]): SourceTrie {
  const root: SourceTrie = { path: '/', children: new Map(), source: false };
  for (const p of paths) {
    let at = root;
    for (const part of pathParts(p)) {
      if (at.source) break;
      let next = at.children.get(part);
      if (!next) at.children.set(part, (next = { path: path.join(at.path, part), children: new Map(), source: false }));
      at = next;
    }
    if (!at.source) {
      at.source = true;
      at.children.clear();
    }
  }
  return root;
}

export class BackupRun {
  private readonly repo: Repository;
  private readonly options: BackupOptions;
  private readonly counters = new ProgressCounters();
  private readonly walkProgress = new WalkProgress();
  private readonly warnings: Warning[] = [];
  private readonly destinations: Destination[];
  private readonly sink: PackSink;
  private readonly spool: PackSpool;
  private readonly priorities: Priorities;
  private readonly paths: string[];
  /** The snapshot's `paths`: the source paths and each stream's /NAME. */
  private readonly snapshotPaths: string[];
  private readonly streams: readonly StreamSource[];
  private readonly breather = new Breather();
  private fatal?: Error;
  /** The parent snapshot's trees (0.1.0 snapshots seen in the absolute layout), while walking. */
  private parentTrees?: TreeSource;
  /** Rejects when the run must stop (a worker died, Ctrl-C); raced against waits that could otherwise hang. */
  private readonly stopped: Promise<never>;
  private stop!: (err: Error) => void;
  /** Aborted with the run: stops a stream's producer (a dump) even while it prints nothing. */
  private readonly streamsStop = new AbortController();
  /** The stream being read, settled once its producer has gone: a stopped run waits for it. */
  private streamInFlight: Promise<unknown> = Promise.resolve();
  private readonly counts: Counts = { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, totalFiles: 0, totalBytes: 0 };
  private excluded = 0;
  onWarning?: (warning: Warning) => void;
  /** Each file as it is done (for -v): new, changed, or unmodified (its parent's chunks reused). */
  onFile?: (path: string, state: FileState) => void;

  constructor(repo: Repository, options: BackupOptions) {
    this.repo = repo;
    this.options = options;
    this.paths = [...new Set(options.paths.map((p) => path.resolve(p)))].sort();
    this.streams = options.streams ?? [];
    this.snapshotPaths = [...this.paths, ...this.streams.map((s) => streamSnapshotPath(s.name))].sort();
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
    this.spool = new PackSpool(fs.mkdtempSync(path.join(options.spoolDir ?? os.tmpdir(), 'coffer-spool-')), options.spool ?? DEFAULT_SPOOL_LIMITS);
    this.sink = new PackSink(repo, this.destinations, this.spool, options.sink ?? DEFAULT_SINK_OPTIONS);
    this.priorities = new Priorities(options.priorities ?? []);
    this.stopped = new Promise<never>((_, reject) => {
      this.stop = (err) => {
        reject(err);
        this.streamsStop.abort();
      };
    });
    this.stopped.catch(() => {});
    options.signal?.addEventListener('abort', () => this.stop(new InterruptedError('interrupted')), { once: true });
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

  /** Waits while the run is paused (the heartbeat goes on meanwhile); then checks it should go on. */
  private async unlessPaused(): Promise<void> {
    // Raced with `stopped`: a run that failed while paused must not wait for a resume to end.
    if (this.options.pause?.paused) await Promise.race([this.options.pause.wait(this.options.signal), this.stopped]);
    this.checkAlive();
  }

  async run(): Promise<BackupResult> {
    const startTime = new Date();
    checkSources(this.paths);
    this.checkStreamNames();
    const session = this.options.session ?? (await WriterSession.start(this.repo, { command: 'backup', onStoreFailure: 'skip' }));
    try {
      for (const [store, err] of session.failed) this.destinationFor(store).detach(new DetachedError(`cannot write a writer marker: ${err.message}`, { cause: err }));
      await this.repo.loadIndex({ holdBack: session.records });
      return await this.runWith(session, startTime);
    } finally {
      if (!this.options.session) await session.end();
    }
  }

  private async runWith(session: WriterSession, startTime: Date): Promise<BackupResult> {
    const { adoptedPacks, catchUp } = await this.prepareDestinations(session);
    const parent = this.options.parent === undefined ? await this.findParent() : (this.options.parent ?? undefined);
    const packSize = this.options.packSize ?? DEFAULT_PACK_SIZE;
    const counter = this.startCounter();
    const pool = new ChunkPool(
      {
        chunkerSeed: this.repo.keys.chunkerSeed,
        chunker: this.repo.config.chunker,
        idKey: this.repo.keys.idKey,
        dataKey: this.repo.keys.dataKey,
        packSize,
        zstdLevel: this.options.zstdLevel ?? DEFAULT_ZSTD_LEVEL,
        ...(this.options.pause ? { pause: this.options.pause.shared } : {}),
      },
      this.repo.index,
      {
        onPack: (pack) => this.sink.add({ ...pack, bytes: new Uint8Array(pack.bytes) }, pack.priority),
        onRead: (bytes) => (this.counters.bytesDone += bytes),
        onFatal: (err) => {
          this.fatal ??= new BackupError(`chunk worker failed: ${err.message}`);
          this.stop(this.fatal);
        },
      },
      this.options.workers,
    );
    const trees = new TreeSaver(this.repo, packSize, (pack) => this.sink.add(pack));
    try {
      this.counters.stage = 'packing';
      // Raced with `stopped`: a walk waiting for workers that a paused run holds still would never see the abort.
      const rootTree = await Promise.race([this.walkSources(pool, trees, parent), this.stopped]);
      await Promise.race([pool.flush(), this.stopped]);
      trees.flush();
      this.counters.stage = 'uploading';
      const snapshot = this.makeSnapshot(startTime, rootTree, parent, trees.newTrees);
      const sealed = this.repo.sealSnapshot(snapshot);
      // 'uploading' until a destination holds everything the snapshot needs and starts writing it.
      const destinations = await Promise.race([
        this.sink.commit(sealed, catchUp, {
          beforeSnapshot: (store) => session.fence(store),
          committing: () => (this.counters.stage = 'committing'),
          committed: (d) => this.onCommitted?.(d.store.location),
        }),
        this.stopped,
      ]);
      this.counters.stage = 'done';
      return {
        snapshotId: sealed.name.slice('snapshots/'.length),
        snapshot,
        warnings: this.warnings,
        adoptedPacks,
        destinations,
        excluded: this.excluded,
        durationMs: Date.now() - startTime.getTime(),
      };
    } catch (err) {
      // A cancelled job has no dump left running once it is reported cancelled.
      await this.streamInFlight;
      await this.sink.abort(err as Error);
      throw err;
    } finally {
      await pool.close();
      await counter.terminate();
      this.spool.close();
    }
  }

  /**
   * Lists every reachable replica once: adopts packs an interrupted run left unindexed, and starts
   * copying to each destination whatever the other replicas hold and it lacks, so its new snapshot
   * never points at packs only the others have (invariant 3).
   */
  private async prepareDestinations(session: WriterSession): Promise<{ adoptedPacks: number; catchUp: Map<Destination, Promise<void>> }> {
    const live = this.repo.stores.filter((store) => !this.destinationFor(store).detached);
    const replicas = await Promise.all(live.map(async (store) => ({ store, inventory: await takeInventory(store) })));
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

  private startCounter(): Worker {
    const setup: CountSetup = { paths: this.paths, selection: this.options.selection ?? {}, oneFileSystem: this.options.oneFileSystem ?? false };
    const worker = new Worker(siblingModule(import.meta.url, 'count-worker'), { workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.on('message', (m: CountMessage) => {
      this.counters.filesTotal = m.files;
      this.counters.bytesTotal = m.bytes;
      this.counters.totalsKnown = m.done;
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
    return Promise.race([rootId, this.stopped]);
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
    const source = stream.open(this.streamsStop.signal);
    try {
      for await (const bytes of source) {
        await this.unlessPaused();
        await Promise.race([writer.write(bytes), this.stopped]);
        this.counters.bytesDone += bytes.length;
      }
    } catch (err) {
      writer.abort();
      if (err instanceof InterruptedError || this.options.signal?.aborted || this.fatal) throw err;
      throw new BackupError(`${streamSnapshotPath(stream.name)}: ${(err as Error).message}; no snapshot was made`, { cause: err });
    }
    const { content, size } = await Promise.race([writer.end(), this.stopped]);
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
    this.excluded += listing.excluded;
    if (listing.error) this.warn(dirPath, `cannot read directory: ${readProblem(listing.error.code, listing.error.message)}`);
    for (const { path, error } of listing.unreadable) this.warn(path, `not backed up: ${readProblem(error.code, error.message)}`);
    const entries = this.priorities.order(listing.entries);
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
        this.counts.dirs++;
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

  private makeSnapshot(startTime: Date, rootTree: Buffer, parent: StoredSnapshot | undefined, newTrees: number): Snapshot {
    const who = whoAmI();
    return {
      version: 1,
      layout: 'absolute',
      time: startTime.toISOString(),
      host: this.options.host ?? who.host,
      user: who.user,
      paths: this.snapshotPaths,
      tags: [...(this.options.tags ?? [])].sort(),
      tree: rootTree.toString('hex'),
      ...(parent ? { parent: parent.id } : {}),
      program: `coffer ${VERSION}`,
      summary: {
        ...this.counts,
        dataBlobs: this.sink.dataBlobs,
        treeBlobs: newTrees,
        bytesAdded: this.sink.bytesAdded,
        warnings: this.warnings.length,
        durationMs: Date.now() - startTime.getTime(),
      },
    };
  }
}
