// The spool between sealing and uploading: each sealed pack is held once, however many destinations
// still need it, and dropped when the last one has it. A chunk worker writes its data packs straight
// into a file of the spool directory (SpoolFile), as restic does, so no thread holds a data pack in
// memory: that was 2 × 16 MiB per worker and as much again waiting on the main thread (bench/PROFILE.md,
// "Data packs in spool files"). Packs built in memory (trees) stay there up to a limit; beyond it the
// oldest that a destination has stored already, and no other is reading, are written out too, so a
// slow destination falls behind without making a fast one wait. A pack no destination has stored yet
// stays in memory: writing it out helps no one, and the backup holds its reading back instead
// (PackSink.backpressure, ChunkPool.holdPacks). When the disk part is full, the caller detaches the
// destination furthest behind. A spool file is unlinked as soon as it is made and read through its
// descriptor: a run killed outright (SIGKILL, the OOM killer) leaves nothing behind, where named spool
// files and folders stayed in /tmp for good.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { discard } from '../format/discard.ts';
import { MAX_PACK_BYTES } from '../format/limits.ts';
import type { ObjectSource } from '../store/store.ts';
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
  file?: SpoolFile;
  /** Destinations that have not released the pack yet. */
  holders: number;
  /** A destination has stored it: the others are behind that one, and the spool may write it to disk for them. */
  stored = false;
  /** Destinations that loaded `bytes` from memory and have not released them: they may be sending them now. */
  readers = 0;
  /** A failed or stopped upload may still read `bytes`: the collector frees them, not the spool. */
  shared = false;

  constructor(pack: Uint8Array | SpoolFile, holders: number) {
    if (pack instanceof SpoolFile) this.file = pack;
    else this.bytes = pack;
    this.size = pack instanceof SpoolFile ? pack.size : pack.length;
    this.holders = holders;
  }
}

/** One destination's claim on a spooled pack: it loads the bytes (as often as it retries), then releases them once. */
export class SpoolHold {
  private readonly spool: PackSpool;
  private readonly entry: SpoolEntry;
  private reading = false;
  /** What the last load read from the spool file, for the spool to reuse once this hold is released. */
  private fromFile?: Uint8Array;

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
    // An earlier load's bytes are left to the collector: its upload failed and may still read them.
    this.fromFile = await file.read(this.spool.readBuffer(this.entry.size));
    return this.fromFile;
  }

  /**
   * The pack read where it lies, for a store that copies from a source (Store.putFrom); none for a pack
   * in memory. It reads as long as this hold is not released.
   */
  source(): ObjectSource | undefined {
    const file = this.entry.file;
    if (!file || this.entry.bytes) return undefined;
    return { size: this.entry.size, read: (into, position) => file.readAt(into, position) };
  }

  /** This destination is done with the pack; after a 'failed' upload the bytes are never freed by hand (PutOutcome). */
  release(outcome: PutOutcome): void {
    if (this.reading) this.entry.readers--;
    this.reading = false;
    if (this.fromFile && outcome !== 'failed') this.spool.reuseReadBuffer(this.fromFile);
    this.fromFile = undefined;
    this.spool.release(this.entry, outcome);
  }
}

/**
 * A pack in a file of the spool directory, under a name that is unlinked at once, so that a run killed
 * outright leaves nothing behind. A file system that refuses to remove an open file (some SMB shares)
 * keeps the name until the pack is let go of. Its descriptor closes only when no read of it is under way:
 * a descriptor number closed early could be reused by another file before a pending read, which would
 * then read that file.
 */
export class SpoolFile {
  readonly fd: number;
  /** The file's name while it still has one (its unlinking was refused). */
  readonly keptName: string | undefined;
  /** Bytes of the pack (the file's length once it is sealed). */
  size: number;
  private reads = 0;
  private closing = false;

  constructor(fd: number, keptName: string | undefined, size = 0) {
    this.fd = fd;
    this.keptName = keptName;
    this.size = size;
  }

  /** A new, empty spool file in `dir`, already unlinked where the file system allows it. */
  static create(dir: string): SpoolFile {
    const name = path.join(dir, `coffer-spool-${crypto.randomBytes(8).toString('hex')}.pack`);
    const fd = fs.openSync(name, 'wx+', 0o600);
    try {
      fs.unlinkSync(name);
      return new SpoolFile(fd, undefined);
    } catch {
      return new SpoolFile(fd, name);
    }
  }

  /** Appends `bytes` at the end of the file. */
  append(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.size + done);
    this.size += bytes.length;
  }

  static write(dir: string, bytes: Uint8Array): SpoolFile {
    const file = SpoolFile.create(dir);
    try {
      file.append(bytes);
    } catch (err) {
      file.close();
      throw err;
    }
    return file;
  }

  /** Reads the whole pack into `into` (exactly `size` bytes long). */
  async read(into: Uint8Array): Promise<Uint8Array> {
    for (let done = 0; done < into.length; ) {
      const bytesRead = await this.readAt(into.subarray(done), done);
      if (bytesRead === 0) throw new Error(`a spooled pack ends after ${done} of its ${into.length} bytes`);
      done += bytesRead;
    }
    return into;
  }

  /** Reads into `into` from `position`; how many bytes were read. Refused once the file is let go of. */
  async readAt(into: Uint8Array, position: number): Promise<number> {
    // Its descriptor may be closed, and its number another file's by now.
    if (this.closing) throw new Error('the backup has ended: its spool holds the pack no more');
    this.reads++;
    try {
      return await new Promise<number>((resolve, reject) => fs.read(this.fd, into, 0, into.length, position, (err, n) => (err ? reject(err) : resolve(n))));
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

/**
 * Read buffers kept for the next load from a spool file. The first write to each page of new memory
 * costs as much as copying the pack on these machines (bench/PROFILE.md, "Pack memory reused"); a few
 * buffers cover the uploads at once of a run's destinations.
 */
const SPARE_READ_BUFFERS = 4;

export class PackSpool {
  /** Where packs are written out (the system's temporary directory by default). */
  private readonly dir: string;
  private readonly limits: SpoolLimits;
  private readonly spareReadBuffers: ArrayBuffer[] = [];
  /** Entries with bytes in memory, oldest first. */
  private readonly inMemory = new Set<SpoolEntry>();
  private memoryBytes = 0;
  private diskBytes = 0;
  /** Entries written out and not yet released by every holder. */
  private readonly onDiskEntries = new Set<SpoolEntry>();

  constructor(dir: string, limits: SpoolLimits = DEFAULT_SPOOL_LIMITS) {
    this.dir = dir;
    this.limits = limits;
  }

  get onDisk(): number {
    return this.diskBytes;
  }

  get overLimit(): boolean {
    return this.diskBytes > this.limits.disk;
  }

  /**
   * Holds a pack for `holders` destinations, one hold each: its bytes, or the spool file a chunk worker
   * wrote it to. The spool owns either from then on: when nothing refers to them any more, the memory
   * is freed (or the file closed) at once. Left to the collector, dead 16 MiB packs piled up on the
   * main thread: V8 does not count a resizable buffer's memory as its own, so nothing made it collect
   * them (bench/PROFILE.md, "Backup memory: dead buffers freed at once" and "Pack memory reused").
   */
  add(pack: Uint8Array | SpoolFile, holders: number): SpoolHold[] {
    const entry = new SpoolEntry(pack, holders);
    if (pack instanceof SpoolFile) {
      if (holders === 0) pack.close();
      else {
        this.onDiskEntries.add(entry);
        this.diskBytes += entry.size;
      }
    } else if (holders === 0) this.freeMemory(entry);
    else {
      this.inMemory.add(entry);
      this.memoryBytes += entry.size;
      this.spill();
    }
    return Array.from({ length: holders }, () => new SpoolHold(this, entry));
  }

  /** A buffer of `size` bytes to read a spool file into: a spare one if there is one big enough. */
  readBuffer(size: number): Buffer {
    const spare = this.spareReadBuffers.findIndex((b) => b.maxByteLength >= size);
    if (spare < 0) return Buffer.from(new ArrayBuffer(size, { maxByteLength: Math.max(size, MAX_PACK_BYTES) }), 0, size);
    const [memory] = this.spareReadBuffers.splice(spare, 1) as [ArrayBuffer];
    // Grown, never shrunk: shrinking gives its tail pages back, and the next read would fault them in again.
    if (memory.byteLength < size) memory.resize(size);
    return Buffer.from(memory, 0, size);
  }

  /** A read buffer nothing refers to any more (its upload is over): kept for a next load, or freed. */
  reuseReadBuffer(bytes: Uint8Array): void {
    const memory = bytes.buffer;
    if (memory instanceof ArrayBuffer && memory.resizable && this.spareReadBuffers.length < SPARE_READ_BUFFERS) this.spareReadBuffers.push(memory);
    else discard(bytes);
  }

  /** Writes packs stored somewhere and read by no one to disk, oldest first, until memory is within its limit. */
  private spill(): void {
    for (const entry of this.inMemory) {
      if (this.memoryBytes <= this.limits.memory) return;
      // Being sent: writing it out would free nothing until the upload ends, and then it is dropped anyway.
      if (entry.readers > 0 || !entry.stored) continue;
      entry.file = SpoolFile.write(this.dir, entry.bytes!);
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
    if (!entry.shared) discard(entry.bytes!);
    entry.bytes = undefined;
  }

  /** Lets go of the packs still on disk (a run that stopped before every destination had them) and of the spare read buffers. */
  close(): void {
    for (const entry of this.onDiskEntries) this.closeFile(entry);
    for (const memory of this.spareReadBuffers.splice(0)) memory.transfer(0);
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
