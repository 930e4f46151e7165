// The spool between sealing and uploading: each sealed pack is held once, however many destinations
// still need it, and dropped when the last one has it. Packs stay in memory up to a limit; beyond it the
// oldest that a destination has stored already, and no other is reading, are written to a spool
// directory on disk, so a slow destination falls behind without making a fast one wait. A pack no
// destination has stored yet stays in memory: writing it out helps no one (even the fastest still needs
// it), and the backup holds its reading back instead (PackSink.backpressure, ChunkPool.holdPacks). When
// the disk part is full, the caller detaches the destination furthest behind. A pack on disk is a file
// unlinked as soon as it is made, read through its descriptor: a run killed outright (SIGKILL, the OOM
// killer) leaves nothing behind, where named spool files and folders stayed in /tmp for good.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { discard } from '../format/discard.ts';
import type { PutOutcome } from './destination.ts';

export interface SpoolLimits {
  /** Bytes of packs kept in memory. */
  readonly memory: number;
  /** Bytes of packs kept on disk; more makes `overLimit` true. */
  readonly disk: number;
}

export const DEFAULT_SPOOL_LIMITS: SpoolLimits = { memory: 64 * 1024 * 1024, disk: 4 * 1024 * 1024 * 1024 };

/** A pack held for the destinations that still need it (PackSpool's bookkeeping). */
class SpoolEntry {
  readonly size: number;
  bytes?: Uint8Array;
  file?: SpillFile;
  /** Destinations that have not released the pack yet. */
  holders: number;
  /** A destination has stored it: the others are behind that one, and the spool may write it to disk for them. */
  stored = false;
  /** Destinations that loaded `bytes` from memory and have not released them: they may be sending them now. */
  readers = 0;
  /** A failed or stopped upload may still read `bytes`: the collector frees them, not the spool. */
  shared = false;

  constructor(bytes: Uint8Array, holders: number) {
    this.bytes = bytes;
    this.size = bytes.length;
    this.holders = holders;
  }
}

/** One destination's claim on a spooled pack: it loads the bytes (as often as it retries), then releases them once. */
export class SpoolHold {
  private readonly spool: PackSpool;
  private readonly entry: SpoolEntry;
  private reading = false;

  constructor(spool: PackSpool, entry: SpoolEntry) {
    this.spool = spool;
    this.entry = entry;
  }

  /** The pack's bytes, from memory or from the spool file. */
  async load(): Promise<Uint8Array> {
    const { bytes, file } = this.entry;
    if (bytes) {
      if (!this.reading) this.entry.readers++;
      this.reading = true;
      return bytes;
    }
    if (!file) throw new Error('the backup has ended: its spool holds the pack no more');
    return file.read(this.entry.size);
  }

  /** This destination is done with the pack; after a 'failed' upload the bytes are never freed by hand (PutOutcome). */
  release(outcome: PutOutcome): void {
    if (this.reading) this.entry.readers--;
    this.reading = false;
    this.spool.release(this.entry, outcome);
  }
}

/**
 * A pack written out to the spool directory under a name that is unlinked at once, so that a run killed
 * outright leaves nothing behind. A file system that refuses to remove an open file (some SMB shares)
 * keeps the name until the pack is let go of. Its descriptor closes only when no read of it is under way:
 * a descriptor number closed early could be reused by another file before a pending read, which would
 * then read that file.
 */
class SpillFile {
  private readonly fd: number;
  /** The file's name while it still has one (its unlinking was refused). */
  private readonly keptName: string | undefined;
  private reads = 0;
  private closing = false;

  private constructor(fd: number, keptName: string | undefined) {
    this.fd = fd;
    this.keptName = keptName;
  }

  static write(dir: string, bytes: Uint8Array): SpillFile {
    const name = path.join(dir, `coffer-spool-${crypto.randomBytes(8).toString('hex')}.pack`);
    const fd = fs.openSync(name, 'wx+', 0o600);
    let keptName: string | undefined;
    try {
      fs.unlinkSync(name);
    } catch {
      keptName = name;
    }
    const file = new SpillFile(fd, keptName);
    try {
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
    } catch (err) {
      file.close();
      throw err;
    }
    return file;
  }

  async read(size: number): Promise<Uint8Array> {
    this.reads++;
    try {
      const bytes = Buffer.allocUnsafeSlow(size);
      for (let done = 0; done < size; ) {
        const { bytesRead } = await new Promise<{ bytesRead: number }>((resolve, reject) => fs.read(this.fd, bytes, done, size - done, done, (err, bytesRead) => (err ? reject(err) : resolve({ bytesRead }))));
        if (bytesRead === 0) throw new Error(`a spooled pack ends after ${done} of its ${size} bytes`);
        done += bytesRead;
      }
      return bytes;
    } finally {
      this.reads--;
      if (this.closing && this.reads === 0) this.release();
    }
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.reads === 0) this.release();
  }

  private release(): void {
    fs.closeSync(this.fd);
    if (!this.keptName) return;
    try {
      fs.unlinkSync(this.keptName);
    } catch {
      // It holds an encrypted pack only; failing the backup over a temporary file left behind would be worse.
    }
  }
}

export class PackSpool {
  /** Where packs are written out (the system's temporary directory by default). */
  private readonly dir: string;
  private readonly limits: SpoolLimits;
  private readonly reuse: (bytes: Uint8Array) => boolean;
  /** Entries with bytes in memory, oldest first. */
  private readonly inMemory = new Set<SpoolEntry>();
  private memoryBytes = 0;
  private diskBytes = 0;
  /** Entries written out and not yet released by every holder. */
  private readonly onDiskEntries = new Set<SpoolEntry>();

  /**
   * `reuse`: offered the bytes of each pack that nothing refers to any more (every destination has it,
   * or it went to disk, and no failed upload may still read it); true when it took them (their memory
   * goes to a next pack), else they are freed here.
   */
  constructor(dir: string, limits: SpoolLimits = DEFAULT_SPOOL_LIMITS, reuse: (bytes: Uint8Array) => boolean = () => false) {
    this.dir = dir;
    this.limits = limits;
    this.reuse = reuse;
  }

  get onDisk(): number {
    return this.diskBytes;
  }

  get overLimit(): boolean {
    return this.diskBytes > this.limits.disk;
  }

  /**
   * Holds a pack for `holders` destinations, one hold each. The spool owns `bytes` from then on: when
   * nothing refers to them any more, their memory is freed at once. Left to the collector, dead 16 MiB
   * packs piled up on the main thread: V8 does not count a resizable buffer's memory as its own, so
   * nothing made it collect them (bench/PROFILE.md, "Backup memory: dead buffers freed at once" and
   * "Pack memory reused").
   */
  add(bytes: Uint8Array, holders: number): SpoolHold[] {
    const entry = new SpoolEntry(bytes, holders);
    if (holders === 0) {
      this.freeMemory(entry);
      return [];
    }
    this.inMemory.add(entry);
    this.memoryBytes += entry.size;
    this.spill();
    return Array.from({ length: holders }, () => new SpoolHold(this, entry));
  }

  /** Writes packs stored somewhere and read by no one to disk, oldest first, until memory is within its limit. */
  private spill(): void {
    for (const entry of this.inMemory) {
      if (this.memoryBytes <= this.limits.memory) return;
      // Being sent: writing it out would free nothing until the upload ends, and then it is dropped anyway.
      if (entry.readers > 0 || !entry.stored) continue;
      entry.file = SpillFile.write(this.dir, entry.bytes!);
      this.onDiskEntries.add(entry);
      this.freeMemory(entry);
      this.diskBytes += entry.size;
    }
  }

  release(entry: SpoolEntry, outcome: PutOutcome): void {
    if (outcome === 'failed') entry.shared = true;
    if (--entry.holders > 0) {
      if (outcome === 'stored' && !entry.stored) {
        entry.stored = true;
        this.spill();
      }
      return;
    }
    if (entry.bytes) this.freeMemory(entry);
    else if (entry.file) this.closeFile(entry);
  }

  private closeFile(entry: SpoolEntry): void {
    entry.file!.close();
    entry.file = undefined;
    this.onDiskEntries.delete(entry);
    this.diskBytes -= entry.size;
  }

  private freeMemory(entry: SpoolEntry): void {
    if (this.inMemory.delete(entry)) this.memoryBytes -= entry.size;
    if (!entry.shared && !this.reuse(entry.bytes!)) discard(entry.bytes!);
    entry.bytes = undefined;
  }

  /** Lets go of the packs still on disk (a run that stopped before every destination had them). */
  close(): void {
    for (const entry of this.onDiskEntries) this.closeFile(entry);
  }
}

/** The spool directory given cannot hold packs; waiting will not change that. */
export class SpoolDirectoryError extends Error {
  override readonly name = 'SpoolDirectoryError';
}

/**
 * Checks the spool directory as a run starts: a wrong one fails then, with a clear message, not when a
 * slow destination first makes the spool write a pack out.
 */
export function checkSpoolDirectory(dir: string): string {
  const why = spoolDirectoryProblem(dir);
  if (why) throw new SpoolDirectoryError(`cannot use ${dir} as the spool directory: ${why}`);
  return dir;
}

function spoolDirectoryProblem(dir: string): string | undefined {
  try {
    if (!fs.statSync(dir).isDirectory()) return 'it is not a directory';
    fs.accessSync(dir, fs.constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'it is not writable' : (err as Error).message;
  }
}
