// The spool between sealing and uploading: each sealed pack is held once, however many destinations
// still need it, and dropped when the last one has it. Packs stay in memory up to a limit; beyond it the
// oldest that a destination has stored already, and no other is reading, are written to a spool
// directory on disk, so a slow destination falls behind without making a fast one wait. A pack no
// destination has stored yet stays in memory: writing it out helps no one (even the fastest still needs
// it), and the backup holds its reading back instead (PackSink.backpressure, ChunkPool.holdPacks). When
// the disk part is full, the caller detaches the destination furthest behind.
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
  file?: string;
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
    return fs.promises.readFile(file!);
  }

  /** This destination is done with the pack; after a 'failed' upload the bytes are never freed by hand (PutOutcome). */
  release(outcome: PutOutcome): void {
    if (this.reading) this.entry.readers--;
    this.reading = false;
    this.spool.release(this.entry, outcome);
  }
}

export class PackSpool {
  private readonly dir: string;
  private readonly limits: SpoolLimits;
  private readonly reuse: (bytes: Uint8Array) => boolean;
  /** Entries with bytes in memory, oldest first. */
  private readonly inMemory = new Set<SpoolEntry>();
  private memoryBytes = 0;
  private diskBytes = 0;
  private dirMade = false;

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
      if (!this.dirMade) {
        fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        this.dirMade = true;
      }
      const file = path.join(this.dir, `${crypto.randomBytes(8).toString('hex')}.pack`);
      fs.writeFileSync(file, entry.bytes!, { mode: 0o600 });
      entry.file = file;
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
    else if (entry.file) {
      fs.rmSync(entry.file, { force: true });
      this.diskBytes -= entry.size;
      entry.file = undefined;
    }
  }

  private freeMemory(entry: SpoolEntry): void {
    if (this.inMemory.delete(entry)) this.memoryBytes -= entry.size;
    if (!entry.shared && !this.reuse(entry.bytes!)) discard(entry.bytes!);
    entry.bytes = undefined;
  }

  /** Removes the spool directory and whatever is left in it (the caller may have made it, spilled or not). */
  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
