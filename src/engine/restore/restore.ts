// Restore: walks the snapshot, creates directories and special files as it goes, and restores file
// contents in batches: the batch's chunks are grouped by pack, each pack is read once (as few range
// reads as possible) and handed to a worker that decrypts, verifies and writes the blobs into place.
// Metadata is applied after contents: files at the end of their batch, directories last, deepest first.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BlobType } from '../../format/pack.ts';
import { NodeType, contentIds, type TreeNode } from '../../format/tree.ts';
import type { Repository } from '../../repo/repository.ts';
import { packName } from '../../store/store.ts';
import { compileExcludes, type PathMatcher } from '../backup/exclude.ts';
import { JobPool } from '../job-pool.ts';
import { siblingModule } from '../sibling-module.ts';
import { nsToSeconds } from '../fs-meta.ts';
import type { FoundPath, SnapshotView } from '../snapshot-view.ts';
import { makeDirectories } from '../../store/make-directories.ts';
import { childPath, displayPath } from '../tree-walk.ts';
import { writeAt } from './file-writer.ts';
import { verifyRestoredFile } from './verify.ts';
import type { BlobJob, JobDone, PackJob, RestoreWorkerSetup } from './restore-protocol.ts';

export interface RestoreOptions {
  readonly target: string;
  /** Only restore entries matching one of these (restic pattern rules); their parents are created. */
  readonly includes?: readonly string[];
  readonly excludes?: readonly string[];
  readonly workers?: number;
  readonly signal?: AbortSignal;
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
  readonly bytes: number;
  /** Files read back and found equal to the snapshot (with `verify`). */
  readonly verified: number;
  readonly errors: readonly RestoreProblem[];
}

interface DirFrame {
  readonly rel: Buffer;
  readonly node: TreeNode;
  created: boolean;
}

interface PlannedFile {
  readonly abs: Buffer;
  readonly display: string;
  readonly node: TreeNode;
  /** Chunk writes still to come; at 0 the file is complete and gets its metadata. */
  pending: number;
  failed?: boolean;
}

interface PackPlan {
  readonly salt: Buffer;
  readonly blobs: Map<number, BlobJob & { targets: { file: number; position: number }[] }>;
}

const BATCH_FILES = 4096;
const BATCH_BYTES = 512 * 1024 * 1024;
/** Blobs closer than this are read with one range request (reading the gap is cheaper than another request). */
const MAX_GAP = 1024 * 1024;
const MAX_SPAN = 16 * 1024 * 1024;
const FETCHES_IN_FLIGHT = 4;
const isRoot = process.getuid?.() === 0;

export class RestoreRun {
  private readonly repo: Repository;
  private readonly options: RestoreOptions;
  private readonly target: Buffer;
  private readonly include: PathMatcher | undefined;
  private readonly exclude: PathMatcher;
  private readonly errors: RestoreProblem[] = [];
  private readonly dirsToFinish: { abs: Buffer; node: TreeNode }[] = [];
  private readonly hardlinks = new Map<string, Buffer>();
  private batch: PlannedFile[] = [];
  private batchBytes = 0;
  private pool?: JobPool<PackJob, JobDone>;
  private trees!: SnapshotView;
  private readonly started = Date.now();
  private filesDone = 0;
  private bytesDone = 0;
  private dirs = 0;
  private verified = 0;
  private currentFile = '';
  /** Totals, when known in advance (a whole snapshot: its summary). */
  filesTotal = 0;
  bytesTotal = 0;

  constructor(repo: Repository, options: RestoreOptions) {
    this.repo = repo;
    this.options = options;
    this.target = Buffer.from(path.resolve(options.target));
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
      currentFile: this.currentFile,
    };
  }

  /** Restores what `from` names in the snapshot `view` (a directory's contents, or one node) into the target. */
  async run(view: SnapshotView, from: FoundPath): Promise<RestoreResult> {
    this.trees = view;
    makeDirectories(this.target.toString());
    const setup: RestoreWorkerSetup = { dataKey: this.repo.keys.dataKey, idKey: this.repo.keys.idKey };
    this.pool = new JobPool(siblingModule(import.meta.url, 'restore-worker'), setup, this.options.workers);
    try {
      if (from.tree) await this.restoreTree(from.tree, Buffer.alloc(0), [], this.include === undefined);
      else if (from.node) await this.restoreNode(from.node, from.node.name, [], true);
      await this.flushBatch();
      // Children change their directory's mtime, so directories get their metadata last, deepest first.
      for (const dir of this.dirsToFinish.reverse()) this.applyMeta(dir.abs, dir.node);
    } finally {
      await this.pool.close();
    }
    return { files: this.filesDone, dirs: this.dirs, bytes: this.bytesDone, verified: this.verified, errors: this.errors };
  }

  private fail(display: string, message: string): void {
    this.errors.push({ path: display, message });
  }

  private abs(rel: Buffer): Buffer {
    return rel.length === 0 ? this.target : Buffer.concat([this.target, Buffer.from('/'), rel]);
  }

  private async restoreTree(tree: Buffer, rel: Buffer, ancestors: DirFrame[], included: boolean): Promise<void> {
    for (const node of await this.trees.loadTree(tree)) {
      if (this.options.signal?.aborted) throw new Error('interrupted');
      await this.restoreNode(node, childPath(rel, node.name), ancestors, included);
    }
  }

  private async restoreNode(node: TreeNode, rel: Buffer, ancestors: DirFrame[], parentIncluded: boolean): Promise<void> {
    const display = displayPath(rel);
    const name = node.name.toString();
    if (this.exclude(display, name)) return;
    const included = parentIncluded || (this.include?.(display, name) ?? true);
    if (node.type === NodeType.Dir) {
      const frame: DirFrame = { rel, node, created: false };
      const chain = [...ancestors, frame];
      if (included) this.ensureDirs(chain);
      if (node.subtree) await this.restoreTree(node.subtree, rel, chain, included);
      return;
    }
    if (!included) return;
    if (!this.ensureDirs(ancestors)) return;
    const abs = this.abs(rel);
    this.currentFile = display;
    try {
      if (node.type === NodeType.File) await this.planFile(abs, display, node);
      else this.restoreSpecial(abs, node);
    } catch (err) {
      this.fail(display, (err as Error).message);
    }
  }

  /** Creates the not yet created directories of a chain; false if one could not be made. */
  private ensureDirs(chain: DirFrame[]): boolean {
    for (const frame of chain) {
      if (frame.created) continue;
      const abs = this.abs(frame.rel);
      // A directory above the sources of a 0.1.0 snapshot has no recorded metadata: an existing one is left as it is.
      const synthetic = this.trees.isSynthetic(frame.node);
      try {
        const existing = fs.lstatSync(abs, { throwIfNoEntry: false });
        if (existing && !existing.isDirectory()) fs.unlinkSync(abs);
        if (!existing?.isDirectory()) fs.mkdirSync(abs, { mode: synthetic ? 0o755 : 0o700 });
      } catch (err) {
        this.fail(displayPath(frame.rel), `cannot create directory: ${(err as Error).message}`);
        return false;
      }
      frame.created = true;
      this.dirs++;
      if (!synthetic) this.dirsToFinish.push({ abs, node: frame.node });
    }
    return true;
  }

  /** Removes whatever is at `abs` (not a directory), so creating never follows an existing symlink. */
  private clear(abs: Buffer): void {
    const existing = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (existing?.isDirectory()) throw new Error('a directory is in the way');
    if (existing) fs.unlinkSync(abs);
  }

  private restoreSpecial(abs: Buffer, node: TreeNode): void {
    this.clear(abs);
    switch (node.type) {
      case NodeType.Symlink:
        fs.symlinkSync(node.linkTarget ?? Buffer.alloc(0), abs);
        break;
      case NodeType.Fifo:
        runTool('mkfifo', ['-m', (node.mode & 0o777).toString(8), abs.toString()]);
        break;
      case NodeType.CharDevice:
      case NodeType.BlockDevice: {
        const rdev = node.rdev ?? 0n;
        const major = Number((rdev >> 8n) & 0xfffn);
        const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
        runTool('mknod', [abs.toString(), node.type === NodeType.CharDevice ? 'c' : 'b', String(major), String(minor)]);
        break;
      }
      case NodeType.Socket:
        // A socket only means something to the process that made it; like restic, it is not recreated.
        return;
    }
    this.applyMeta(abs, node);
  }

  private async planFile(abs: Buffer, display: string, node: TreeNode): Promise<void> {
    if (node.links > 1) {
      const key = `${node.device}:${node.inode}`;
      const first = this.hardlinks.get(key);
      if (first) {
        this.clear(abs);
        fs.linkSync(first, abs);
        this.filesDone++;
        return;
      }
      this.hardlinks.set(key, abs);
    }
    // Created right away, so a hard link to it later in this batch has something to point at.
    this.clear(abs);
    const fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      if (node.sparse) fs.ftruncateSync(fd, node.size);
    } finally {
      fs.closeSync(fd);
    }
    this.batch.push({ abs, display, node, pending: 0 });
    this.batchBytes += node.size;
    if (this.batch.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES) await this.flushBatch();
  }

  private async flushBatch(): Promise<void> {
    const files = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (files.length === 0) return;
    const packs = this.groupByPack(files);
    // Files without chunks (empty ones) are complete already; the others as their last chunk is written.
    for (const file of files) if (file.pending === 0) this.fileWritten(file);
    const jobs: Promise<void>[] = [];
    let inFlight = 0;
    let wake: (() => void) | undefined;
    for (const [packId, plan] of packs) {
      for (const span of spans([...plan.blobs.values()].sort((a, b) => a.offset - b.offset))) {
        while (inFlight >= FETCHES_IN_FLIGHT) await new Promise<void>((resolve) => (wake = resolve));
        inFlight++;
        jobs.push(
          this.restoreSpan(packId, plan.salt, span, files).finally(() => {
            inFlight--;
            wake?.();
          }),
        );
      }
    }
    await Promise.all(jobs);
  }

  /** One chunk of `file` is written; the last one completes the file. */
  private chunkWritten(file: PlannedFile): void {
    file.pending--;
    if (file.pending === 0) this.fileWritten(file);
  }

  private fileWritten(file: PlannedFile): void {
    if (file.failed) return;
    this.applyMeta(file.abs, file.node);
    this.filesDone++;
    if (this.options.verify) {
      const problem = verifyRestoredFile(file.abs, file.node, this.repo.index, this.repo.idKey);
      if (problem) this.fail(file.display, `verification failed: the restored file ${problem}`);
      else this.verified++;
    }
  }

  private groupByPack(files: PlannedFile[]): Map<string, PackPlan> {
    const packs = new Map<string, PackPlan>();
    files.forEach((file, fileNo) => {
      let position = 0;
      for (const id of contentIds(file.node)) {
        const loc = this.repo.index.lookup(id);
        if (!loc || loc.type !== BlobType.Data) {
          this.fileFailed(file, `chunk ${id.toString('hex').slice(0, 16)} is not in the index; run coffer check`);
          return;
        }
        let plan = packs.get(loc.packId);
        if (!plan) packs.set(loc.packId, (plan = { salt: loc.salt, blobs: new Map() }));
        let blob = plan.blobs.get(loc.offset);
        if (!blob) {
          blob = { type: loc.type, id, offset: loc.offset, length: loc.length, rawLength: loc.rawLength, targets: [] };
          plan.blobs.set(loc.offset, blob);
        }
        blob.targets.push({ file: fileNo, position });
        file.pending++;
        position += loc.rawLength;
      }
      if (position !== file.node.size) this.fileFailed(file, `chunks add up to ${position} bytes, the snapshot says ${file.node.size}`);
    });
    return packs;
  }

  private fileFailed(file: PlannedFile, message: string): void {
    if (!file.failed) this.fail(file.display, message);
    file.failed = true;
  }

  private async restoreSpan(packId: string, salt: Buffer, blobs: BlobJob[], files: PlannedFile[]): Promise<void> {
    const name = packName(packId);
    const base = blobs[0]!.offset;
    const last = blobs[blobs.length - 1]!;
    const fileTable: PackJob['files'] = {};
    for (const blob of blobs) for (const t of blob.targets) fileTable[t.file] ??= { path: files[t.file]!.abs, sparse: files[t.file]!.node.sparse ?? false };
    let bytes: Buffer | undefined;
    try {
      bytes = await this.repo.read(name, (b) => b, { offset: base, length: last.offset + last.length - base });
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
      raw = await this.repo.readBlob(blob.id, BlobType.Data);
    } catch (err) {
      for (const t of blob.targets) this.fileFailed(files[t.file]!, (err as Error).message);
      return;
    }
    for (const t of blob.targets) {
      const file = files[t.file]!;
      if (file.failed) continue;
      try {
        const fd = fs.openSync(file.abs, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
        try {
          writeAt(fd, raw, t.position, file.node.sparse ?? false);
        } finally {
          fs.closeSync(fd);
        }
        this.bytesDone += raw.length;
        this.chunkWritten(file);
      } catch (err) {
        this.fileFailed(file, `cannot write: ${(err as Error).message}`);
      }
    }
  }

  /** Owner (when root), mode (not for symlinks) and times; a failure is reported, not fatal. */
  private applyMeta(abs: Buffer, node: TreeNode): void {
    const symlink = node.type === NodeType.Symlink;
    try {
      if (isRoot) fs.lchownSync(abs, node.uid, node.gid);
      // After chown: changing the owner clears setuid/setgid bits.
      if (!symlink) fs.chmodSync(abs, node.mode);
      const mtime = nsToSeconds(node.mtimeNs);
      if (symlink) fs.lutimesSync(abs, mtime, mtime);
      else fs.utimesSync(abs, mtime, mtime);
    } catch (err) {
      this.fail(abs.subarray(this.target.length).toString() || '/', `cannot set metadata: ${(err as Error).message}`);
    }
  }
}

/** Groups blobs (sorted by offset) into ranges worth one read each. */
function spans(blobs: BlobJob[]): BlobJob[][] {
  const result: BlobJob[][] = [];
  let current: BlobJob[] = [];
  for (const blob of blobs) {
    const first = current[0];
    const prev = current[current.length - 1];
    if (first && prev && (blob.offset - (prev.offset + prev.length) > MAX_GAP || blob.offset + blob.length - first.offset > MAX_SPAN)) {
      result.push(current);
      current = [];
    }
    current.push(blob);
  }
  if (current.length > 0) result.push(current);
  return result;
}

function runTool(tool: string, args: string[]): void {
  const result = spawnSync(tool, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${tool} failed: ${(result.stderr || result.error?.message || '').trim()}`);
}
