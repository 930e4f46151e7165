// Restore: walks the snapshot (an explicit stack, one frame per directory level), creates directories
// and special files as it goes, and restores file contents in batches: the batch's chunks are grouped
// by pack, each pack is read once (as few range reads as possible) and handed to a worker that
// decrypts, verifies and writes the blobs into place.
//
// Everything is written relative to directories the restore opened itself (target-dir.ts), under a
// temporary name, and renamed to its real name only when complete and its metadata is set: an
// interrupted or failed restore never leaves a half-written file under a real name. A directory gets
// its metadata once everything inside it is done. Memory grows with the depth of the tree, not with
// its size, and a tree that reuses its subtrees absurdly often is refused before anything is written.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { BlobType } from '../../format/pack.ts';
import { NodeType, contentIds, type TreeNode } from '../../format/tree.ts';
import type { Repository } from '../../repo/repository.ts';
import { RepositoryError } from '../../repo/repository.ts';
import { packName } from '../../store/store.ts';
import { compileExcludes, MATCH_NOTHING, type PathMatcher } from '../backup/exclude.ts';
import { Breather } from '../breather.ts';
import { nsToSeconds } from '../fs-meta.ts';
import { InterruptedError, untilAborted } from '../interrupted.ts';
import type { PauseGate } from '../pause-gate.ts';
import { JobPool } from '../job-pool.ts';
import { readSpans, type Span, type SpanLimits } from '../read-spans.ts';
import { siblingModule } from '../sibling-module.ts';
import { RESTORE_THREAD_BYTES, threadLimit } from '../thread-budget.ts';
import type { FoundPath, SnapshotView } from '../snapshot-view.ts';
import { MAX_TREE_DEPTH, measureTree, tooDeep } from '../tree-walk.ts';
import { writeAt } from './file-writer.ts';
import { makeSpecial } from './special-files.ts';
import type { BlobJob, JobDone, PackJob, RestoreWorkerSetup } from './restore-protocol.ts';
import { TargetDir } from './target-dir.ts';
import { verifyRestoredFile } from './verify.ts';

export interface RestoreOptions {
  readonly target: string;
  /** Only restore entries matching one of these (restic pattern rules); their parents are created. */
  readonly includes?: readonly string[];
  readonly excludes?: readonly string[];
  readonly workers?: number;
  /** Stops the restore (InterruptedError) within moments; files not yet complete are removed. */
  readonly signal?: AbortSignal;
  /** Closed while the restore is paused: the fetches under way finish, the next ones and the walk wait. */
  readonly pause?: PauseGate;
  /** Read every restored file back and compare it with the snapshot's chunk ids. */
  readonly verify?: boolean;
}

export interface RestoreProblem {
  readonly path: string;
  readonly message: string;
}

export interface RestoreProgress {
  readonly elapsedMs: number;
  readonly filesDone: number;
  readonly bytesDone: number;
  readonly filesTotal: number;
  readonly bytesTotal: number;
  readonly bytesPerSecond: number;
  readonly etaSeconds?: number;
  readonly currentFile: string;
}

export interface RestoreResult {
  readonly files: number;
  readonly dirs: number;
  /** The sizes of the files put in place: what was written of a file that failed is not counted. */
  readonly bytes: number;
  /** Files read back and found equal to the snapshot (with `verify`). */
  readonly verified: number;
  readonly errors: readonly RestoreProblem[];
}

/**
 * A restore creates at most this many entries per entry the repository stores for the tree. Backups
 * reuse a subtree only when a whole directory is identical, down to inode numbers (hard-linked copies);
 * a tree that claims more paths than this was built to make the restore run for ever.
 */
const MAX_REUSE = 65_536;

/** A directory being restored: on the walk's stack while its entries are visited, alive until its metadata is set. */
interface DirFrame {
  readonly parent: DirFrame | undefined;
  /** Name in the parent (empty for the top of the restore). */
  readonly name: Buffer;
  /** Metadata to apply once done (none for the top of the restore, or a directory made up by the view). */
  readonly node: TreeNode | undefined;
  readonly included: boolean;
  nodes: TreeNode[];
  next: number;
  dir?: TargetDir;
  failed?: boolean;
  /** 1 while the walk is in it, plus each file or link of it not yet in place. */
  pending: number;
}

interface PlannedFile {
  readonly frame: DirFrame;
  readonly name: Buffer;
  readonly tmp: Buffer;
  readonly node: TreeNode;
  /** Path of the temporary file through its directory. */
  readonly path: Buffer;
  /**
   * The temporary file, open from its creation until it is complete: the workers write through it and
   * its metadata is set through it, so each file is opened once. Undefined once closed.
   */
  fd: number | undefined;
  /** Chunk writes still to come (written or failed); at 0 the file is finished and put in place. */
  pending: number;
  failed?: boolean;
}

/** A hard link to a file of the current batch, made once that file is in place. */
interface PlannedLink {
  readonly frame: DirFrame;
  readonly name: Buffer;
  readonly source: Buffer;
}

interface PackPlan {
  readonly salt: Buffer;
  readonly blobs: Map<number, BlobJob & { targets: { file: number; position: number }[] }>;
}

/**
 * Each file of a batch stays open until it is complete: with BATCH_DIRS, 2,304 descriptors at most,
 * well below the 4,096 Linux allows a process by default (Node raises its soft limit to the hard one).
 */
const BATCH_FILES = 2048;
const BATCH_BYTES = 512 * 1024 * 1024;
/** A batch holds each of its files' directories open: this many at most. */
const BATCH_DIRS = 256;
/** Blobs within 1 MiB of each other are read with one range request, up to 16 MiB at a time. */
const SPANS: SpanLimits = { maxGap: 1024 * 1024, maxSpan: 16 * 1024 * 1024 };
const FETCHES_IN_FLIGHT = 4;
const SLASH = Buffer.from('/');
const isRoot = process.getuid?.() === 0;

/**
 * Fresh names for what a restore makes before it is complete: random per run, so no snapshot entry can
 * be made to collide with one, and numbered within the run (random bytes per name cost a `getpid` and a
 * pool refill each: 78,936 `getpid` calls and ~0.3 CPU-s of a 78.6k-file restore).
 */
class TemporaryNames {
  private readonly run = crypto.randomBytes(8).toString('hex');
  private count = 0;

  next(): string {
    return `.coffer-restore-${this.run}-${++this.count}.tmp`;
  }
}

export class RestoreRun {
  private readonly repo: Repository;
  private readonly options: RestoreOptions;
  private readonly include: PathMatcher | undefined;
  private readonly exclude: PathMatcher;
  private readonly errors: RestoreProblem[] = [];
  /** First place each multiply-linked file went: its path below the target. */
  private readonly hardlinks = new Map<string, { path: Buffer; inPlace: boolean }>();
  private readonly openDirs = new Set<TargetDir>();
  private readonly breather = new Breather();
  private readonly temporaryNames = new TemporaryNames();
  private root?: TargetDir;
  private batch: PlannedFile[] = [];
  private batchLinks: PlannedLink[] = [];
  private batchDirs = new Set<DirFrame>();
  private batchBytes = 0;
  /** Files of the batch being written, not yet in place. */
  private writing: PlannedFile[] = [];
  private pool?: JobPool<PackJob, JobDone>;
  private trees!: SnapshotView;
  private readonly started = Date.now();
  private filesDone = 0;
  private verified = 0;
  private bytesDone = 0;
  private bytesRestored = 0;
  private dirs = 0;
  private current?: { frame: DirFrame; name: Buffer };
  /** Totals, when known in advance (a whole tree without patterns: measured before the restore). */
  filesTotal = 0;
  bytesTotal = 0;

  constructor(repo: Repository, options: RestoreOptions) {
    this.repo = repo;
    this.options = options;
    this.include = options.includes?.length ? compileExcludes(options.includes) : undefined;
    this.exclude = compileExcludes(options.excludes ?? []);
  }

  progress(): RestoreProgress {
    const elapsedMs = Date.now() - this.started;
    const bytesPerSecond = elapsedMs > 0 ? (this.bytesDone * 1000) / elapsedMs : 0;
    const left = this.bytesTotal - this.bytesDone;
    return {
      elapsedMs,
      filesDone: this.filesDone,
      bytesDone: this.bytesDone,
      filesTotal: Math.max(this.filesTotal, this.filesDone),
      bytesTotal: Math.max(this.bytesTotal, this.bytesDone),
      bytesPerSecond,
      ...(this.bytesTotal > 0 && bytesPerSecond > 0 && left >= 0 ? { etaSeconds: left / bytesPerSecond } : {}),
      currentFile: this.current ? displayOf(this.current.frame, this.current.name) : '',
    };
  }

  /** Waits while the restore is paused (fetches under way finish meanwhile); throws InterruptedError if it is stopped. */
  private async whilePaused(): Promise<void> {
    if (this.options.pause?.paused) await this.until(this.options.pause.wait(this.options.signal));
  }

  /** Waits for `work`, or throws InterruptedError as soon as the restore is asked to stop. */
  private until<T>(work: Promise<T>): Promise<T> {
    return untilAborted(work, this.options.signal);
  }

  /** Restores what `from` names in the snapshot `view` (a directory's contents, or one node) into the target. */
  async run(view: SnapshotView, from: FoundPath): Promise<RestoreResult> {
    this.trees = view;
    if (from.tree) await this.checkSize(from.tree);
    const root = TargetDir.openRoot(this.options.target);
    this.root = root;
    this.openDirs.add(root);
    const setup: RestoreWorkerSetup = { dataKey: this.repo.keys.dataKey, idKey: this.repo.keys.idKey };
    this.pool = new JobPool(siblingModule(import.meta.url, 'restore-worker'), setup, 'restore worker', this.options.workers ?? threadLimit(RESTORE_THREAD_BYTES));
    let finished = false;
    try {
      const nodes = from.tree ? await this.until(this.trees.loadTree(from.tree)) : [from.node!];
      // One node asked for by name is restored whatever the patterns say.
      const included = from.tree ? this.include === undefined : true;
      await this.walk({ parent: undefined, name: Buffer.alloc(0), node: undefined, included, nodes, next: 0, dir: root, pending: 1 });
      await this.flushBatch();
      finished = true;
    } finally {
      // Workers first: none may still be writing when the batch's files are removed.
      await this.pool.close();
      if (!finished) this.discardBatch();
      for (const dir of this.openDirs) dir.close();
      this.openDirs.clear();
    }
    return { files: this.filesDone, dirs: this.dirs, bytes: this.bytesRestored, verified: this.verified, errors: this.errors };
  }

  /** Measures the tree first: refuses absurd reuse of subtrees, and learns the totals for progress. */
  private async checkSize(tree: Buffer): Promise<void> {
    const measure = await this.until(measureTree(this.trees, tree));
    if (measure.entries > MAX_REUSE * Math.max(1, measure.storedEntries)) {
      throw new RepositoryError(
        `refusing to restore: the tree holds ${measure.entries} paths built from only ${measure.storedEntries} stored entries (each reused over ${MAX_REUSE} times); the snapshot is damaged or was crafted`,
      );
    }
    if (this.include === undefined && this.exclude === MATCH_NOTHING) {
      this.filesTotal = measure.files;
      this.bytesTotal = measure.bytes;
    }
  }

  /** Depth first with an explicit stack: a directory's entries, then each subdirectory's in turn. */
  private async walk(top: DirFrame): Promise<void> {
    const stack: DirFrame[] = [top];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const node = frame.nodes[frame.next++];
      if (!node) {
        stack.pop();
        frame.nodes = [];
        this.release(frame);
        continue;
      }
      if (this.options.signal?.aborted) throw new InterruptedError();
      await this.breather.pause();
      await this.whilePaused();
      const display = this.exclude === MATCH_NOTHING && this.include === undefined ? '' : displayOf(frame, node.name);
      const name = node.name.toString();
      if (this.exclude(display, name)) continue;
      const included = frame.included || (this.include?.(display, name) ?? true);
      if (node.type === NodeType.Dir) {
        if (stack.length >= MAX_TREE_DEPTH) throw tooDeep(displayOf(frame, node.name));
        const nodes = node.subtree ? await this.until(this.trees.loadTree(node.subtree)) : [];
        // A directory above the sources of a 0.1.0 snapshot has no recorded metadata: none is applied.
        const meta = this.trees.isSynthetic(node) ? undefined : node;
        // The parent does not wait for it: what happens inside a directory does not change its parent.
        const child: DirFrame = { parent: frame, name: node.name, node: meta, included, nodes, next: 0, pending: 1 };
        if (included) this.ensureDir(child);
        stack.push(child);
        continue;
      }
      if (!included || !this.ensureDir(frame)) continue;
      this.current = { frame, name: node.name };
      try {
        if (node.type === NodeType.File) await this.planFile(frame, node);
        else this.restoreSpecial(frame, node);
      } catch (err) {
        this.fail(displayOf(frame, node.name), (err as Error).message);
      }
    }
  }

  private fail(display: string, message: string): void {
    this.errors.push({ path: display, message });
  }

  /** Creates the directory of `frame` and those above it that are not made yet; false if one could not be. */
  private ensureDir(frame: DirFrame): boolean {
    const missing: DirFrame[] = [];
    for (let f: DirFrame | undefined = frame; f && !f.dir; f = f.parent) {
      if (f.failed) return false;
      missing.push(f);
    }
    for (const f of missing.reverse()) {
      if (f.parent?.failed) {
        f.failed = true;
        return false;
      }
      try {
        // Made up directories (0.1.0 snapshots) get the usual mode, real ones stay private until complete.
        f.dir = f.parent!.dir!.child(f.name, f.node ? 0o700 : 0o755);
      } catch (err) {
        f.failed = true;
        this.fail(displayOf(f.parent!, f.name), `cannot create directory: ${(err as Error).message}`);
        return false;
      }
      this.openDirs.add(f.dir);
      this.dirs++;
    }
    return true;
  }

  /** One thing less to wait for in `frame`; when nothing is left, its metadata is set and it is closed. */
  private release(frame: DirFrame): void {
    if (--frame.pending > 0) return;
    const dir = frame.dir;
    // The top of the restore is the target itself: closed at the end, its metadata left alone.
    if (!dir || !frame.parent) return;
    if (frame.node) this.applyMeta(displayOf(frame.parent, frame.name), frame.node, (meta) => meta.fd(dir.fd));
    dir.close();
    this.openDirs.delete(dir);
  }

  /** Symlinks, FIFOs and devices: made under a temporary name, given their metadata, then renamed into place. */
  private restoreSpecial(frame: DirFrame, node: TreeNode): void {
    // A socket only means something to the process that made it; like restic, it is not recreated.
    if (node.type === NodeType.Socket) return;
    const dir = frame.dir!;
    const tmp = this.temporaryNames.next();
    const tmpPath = dir.at(Buffer.from(tmp));
    if (node.type === NodeType.Symlink) fs.symlinkSync(node.linkTarget ?? Buffer.alloc(0), tmpPath);
    else makeSpecial(dir, tmp, node);
    try {
      this.applyMeta(displayOf(frame, node.name), node, (meta) => meta.path(tmpPath, node.type === NodeType.Symlink));
      fs.renameSync(tmpPath, dir.at(node.name));
    } catch (err) {
      fs.rmSync(tmpPath, { force: true });
      throw inTheWay(err);
    }
  }

  private async planFile(frame: DirFrame, node: TreeNode): Promise<void> {
    const dir = frame.dir!;
    if (node.links > 1) {
      const key = `${node.device}:${node.inode}`;
      const first = this.hardlinks.get(key);
      if (first) {
        if (first.inPlace) this.link(frame, node.name, first.path);
        else {
          frame.pending++;
          this.batchLinks.push({ frame, name: node.name, source: first.path });
        }
        return;
      }
      this.hardlinks.set(key, { path: relativePath(frame, node.name), inPlace: false });
    }
    const tmp = Buffer.from(this.temporaryNames.next());
    const path = dir.at(tmp);
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    frame.pending++;
    this.batch.push({ frame, name: node.name, tmp, node, path, fd, pending: 0 });
    this.batchDirs.add(frame);
    this.batchBytes += node.size;
    if (this.batch.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES || this.batchDirs.size >= BATCH_DIRS) await this.flushBatch();
  }

  /** A hard link `name` in `frame` to the file restored at `source` (below the target). */
  private link(frame: DirFrame, name: Buffer, source: Buffer): void {
    const dir = frame.dir!;
    const tmpPath = dir.at(Buffer.from(this.temporaryNames.next()));
    try {
      fs.linkSync(this.root!.at(source), tmpPath);
      fs.renameSync(tmpPath, dir.at(name));
      this.filesDone++;
    } catch (err) {
      fs.rmSync(tmpPath, { force: true });
      this.fail(displayOf(frame, name), `cannot make the hard link: ${inTheWay(err).message}`);
    }
  }

  private async flushBatch(): Promise<void> {
    const files = this.batch;
    const links = this.batchLinks;
    this.batch = [];
    this.batchLinks = [];
    this.batchDirs = new Set();
    this.batchBytes = 0;
    if (files.length === 0 && links.length === 0) return;
    // Until they are in place, the files belong to the batch: an interruption removes them.
    this.writing = files;
    const packs = this.groupByPack(files);
    // Files without chunks to write (empty or failed already) are finished now, the others as their
    // last chunk is written, so progress counts files as they complete.
    for (const file of files) if (file.pending === 0) this.finishFile(file);
    const jobs: Promise<void>[] = [];
    let inFlight = 0;
    let wake: (() => void) | undefined;
    // The first span that fails stops the batch: no more are started, and the run fails once those in
    // flight have settled (none may still be writing when the batch's files are removed).
    let failure: { error: unknown } | undefined;
    spans: for (const [packId, plan] of packs) {
      for (const span of readSpans([...plan.blobs.values()].sort((a, b) => a.offset - b.offset), (blob) => blob, SPANS)) {
        while (inFlight >= FETCHES_IN_FLIGHT && !failure) await this.until(new Promise<void>((resolve) => (wake = resolve)));
        if (failure) break spans;
        await this.whilePaused();
        inFlight++;
        jobs.push(
          this.restoreSpan(packId, plan.salt, span, files)
            .catch((error: unknown) => void (failure ??= { error }))
            .finally(() => {
              inFlight--;
              wake?.();
            }),
        );
      }
    }
    await this.until(Promise.all(jobs));
    if (failure) throw failure.error;
    this.writing = [];
    for (const l of links) {
      this.link(l.frame, l.name, l.source);
      this.release(l.frame);
    }
  }

  /** After an interruption or a failure: the batch's temporary files go, nothing half-written stays. */
  private discardBatch(): void {
    for (const file of [...this.writing, ...this.batch]) {
      closeFile(file);
      fs.rmSync(file.path, { force: true });
    }
    this.writing = [];
    this.batch = [];
  }

  /** Metadata, then the real name; a file that failed leaves nothing behind. */
  private finishFile(file: PlannedFile): void {
    const { frame, node } = file;
    const display = displayOf(frame, file.name);
    if (!file.failed) this.applyMeta(display, node, (meta) => meta.fd(file.fd!));
    // No chunk of it is in flight any more (its last one was just accounted for), so no worker can
    // still write through the descriptor, whose number the next open may reuse.
    closeFile(file);
    if (!file.failed) {
      try {
        fs.renameSync(file.path, frame.dir!.at(file.name));
        this.filesDone++;
        this.bytesRestored += node.size;
        if (node.links > 1) this.hardlinks.get(`${node.device}:${node.inode}`)!.inPlace = true;
      } catch (err) {
        this.fileFailed(file, `cannot put it in place: ${inTheWay(err).message}`);
      }
      if (!file.failed && this.options.verify) {
        const problem = verifyRestoredFile(frame.dir!.at(file.name), node, this.repo.index, this.repo.idKey);
        if (problem) this.fail(display, `verification failed: the restored file ${problem}`);
        else this.verified++;
      }
    }
    if (file.failed) fs.rmSync(file.path, { force: true });
    this.release(frame);
  }

  private groupByPack(files: PlannedFile[]): Map<string, PackPlan> {
    const packs = new Map<string, PackPlan>();
    files.forEach((file, fileNo) => {
      const blobs: { id: Buffer; loc: NonNullable<ReturnType<Repository['index']['lookup']>>; position: number }[] = [];
      let position = 0;
      for (const id of contentIds(file.node)) {
        const loc = this.repo.locate(id);
        if (!loc || loc.type !== BlobType.Data) {
          this.fileFailed(file, `chunk ${id.toString('hex').slice(0, 16)} is not in the index; run coffer check`);
          return;
        }
        blobs.push({ id, loc, position });
        position += loc.rawLength;
      }
      // Checked before anything is written: a node claiming 15 TiB must not leave a 15 TiB file behind.
      if (position !== file.node.size) {
        this.fileFailed(file, `chunks add up to ${position} bytes, the snapshot says ${file.node.size}`);
        return;
      }
      if (file.node.sparse) {
        try {
          fs.ftruncateSync(file.fd!, file.node.size);
        } catch (err) {
          this.fileFailed(file, `cannot write: ${(err as Error).message}`);
          return;
        }
      }
      for (const { id, loc, position } of blobs) {
        let plan = packs.get(loc.packId);
        if (!plan) packs.set(loc.packId, (plan = { salt: loc.salt, blobs: new Map() }));
        let blob = plan.blobs.get(loc.offset);
        if (!blob) {
          blob = { type: loc.type, id, offset: loc.offset, length: loc.length, rawLength: loc.rawLength, targets: [] };
          plan.blobs.set(loc.offset, blob);
        }
        blob.targets.push({ file: fileNo, position });
        file.pending++;
      }
    });
    return packs;
  }

  private fileFailed(file: PlannedFile, message: string): void {
    if (!file.failed) this.fail(displayOf(file.frame, file.name), message);
    file.failed = true;
  }

  private async restoreSpan(packId: string, salt: Buffer, span: Span<BlobJob>, files: PlannedFile[]): Promise<void> {
    const name = packName(packId);
    const { items: blobs, offset: base } = span;
    const fileTable: PackJob['files'] = {};
    for (const blob of blobs) for (const t of blob.targets) fileTable[t.file] ??= { fd: files[t.file]!.fd!, sparse: files[t.file]!.node.sparse ?? false };
    let bytes: Buffer | undefined;
    try {
      bytes = await this.repo.read(name, (b) => b, { offset: base, length: span.length });
    } catch {
      // Every replica failed the range read: fetch blob by blob below, which names what is missing.
    }
    let failed: number[] = blobs.map((_, i) => i);
    if (bytes) {
      // A buffer of its own moves to the worker as it is; a slice of a shared one is copied first.
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !(bytes.buffer instanceof SharedArrayBuffer);
      const owned = own ? (bytes.buffer as ArrayBuffer) : new Uint8Array(bytes).buffer;
      const done = await this.pool!.run((job) => ({
        job: { type: 'pack', job, packName: name, salt, bytes: owned, base, blobs, files: fileTable },
        transfer: [owned],
      }));
      this.bytesDone += done.bytesWritten;
      for (const e of done.fileErrors) this.fileFailed(files[e.file]!, `cannot write: ${e.message}`);
      failed = done.failed.map((f) => f.blob);
      const refetched = new Set(failed);
      blobs.forEach((blob, i) => {
        if (!refetched.has(i)) for (const t of blob.targets) this.chunkWritten(files[t.file]!);
      });
    }
    for (const i of failed) await this.refetch(blobs[i]!, files);
  }

  /** A blob that was missing or damaged in the first copy read: readBlob tries every replica. */
  private async refetch(blob: BlobJob, files: PlannedFile[]): Promise<void> {
    let raw: Buffer;
    try {
      raw = await this.repo.readBlob(Buffer.from(blob.id), BlobType.Data);
    } catch (err) {
      for (const t of blob.targets) {
        this.fileFailed(files[t.file]!, (err as Error).message);
        this.chunkWritten(files[t.file]!);
      }
      return;
    }
    for (const t of blob.targets) {
      const file = files[t.file]!;
      if (!file.failed) {
        try {
          writeAt(file.fd!, raw, t.position, file.node.sparse ?? false);
          this.bytesDone += raw.length;
        } catch (err) {
          this.fileFailed(file, `cannot write: ${(err as Error).message}`);
        }
      }
      this.chunkWritten(file);
    }
  }

  /** One chunk of `file` is written (or failed); after the last one the file is finished. */
  private chunkWritten(file: PlannedFile): void {
    if (--file.pending === 0) this.finishFile(file);
  }

  /** Owner (when root), mode (not for symlinks) and times; a failure is reported, not fatal. */
  private applyMeta(display: string, node: TreeNode, apply: (meta: MetaSetter) => void): void {
    try {
      apply(new MetaSetter(node));
    } catch (err) {
      this.fail(display || '/', `cannot set metadata: ${(err as Error).message}`);
    }
  }
}

/** Sets a node's owner (when root), mode and times on what the restore made, never following a link. */
class MetaSetter {
  private readonly node: TreeNode;

  constructor(node: TreeNode) {
    this.node = node;
  }

  private get mtime(): number {
    return nsToSeconds(this.node.mtimeNs);
  }

  /** An open directory, or a file the restore made (open for writing). */
  fd(fd: number): void {
    if (isRoot) fs.fchownSync(fd, this.node.uid, this.node.gid);
    // After chown: changing the owner clears setuid/setgid bits.
    fs.fchmodSync(fd, this.node.mode);
    fs.futimesSync(fd, this.mtime, this.mtime);
  }

  /** A symlink, FIFO or device node under its temporary name (private to the restore until renamed). */
  path(path: Buffer, symlink: boolean): void {
    if (isRoot) fs.lchownSync(path, this.node.uid, this.node.gid);
    if (!symlink) fs.chmodSync(path, this.node.mode);
    fs.lutimesSync(path, this.mtime, this.mtime);
  }
}

/** Closes a planned file's descriptor once (a second close could close another file that reused the number). */
function closeFile(file: PlannedFile): void {
  if (file.fd === undefined) return;
  fs.closeSync(file.fd);
  file.fd = undefined;
}

/** '/'-prefixed path of `name` in `frame`, built by walking up (frames hold only their own name). */
function displayOf(frame: DirFrame, name: Buffer): string {
  return `/${relativePath(frame, name).toString('utf8')}`;
}

/** Raw path of `name` in `frame` below the target. */
function relativePath(frame: DirFrame, name: Buffer): Buffer {
  const names = [name];
  for (let f: DirFrame | undefined = frame; f?.parent; f = f.parent) names.unshift(f.name);
  return Buffer.concat(names.flatMap((n, i) => (i === 0 ? [n] : [SLASH, n])));
}

/** A rename or link that failed because a directory holds the name gets a message that says so. */
function inTheWay(err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' ? new Error('a directory is in the way') : (err as Error);
}

