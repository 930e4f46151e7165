// The spool between sealing and uploading: each sealed pack is held once, however many destinations
// still need it, and dropped when the last one has it. Packs stay in memory up to a limit; beyond it the
// oldest are written to a spool directory on disk, so a slow destination falls behind without making a
// fast one wait. When the disk part is full too, the caller detaches the destination furthest behind.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { discard } from '../format/discard.ts';

export interface SpoolLimits {
  /** Bytes of packs kept in memory. */
  readonly memory: number;
  /** Bytes of packs kept on disk; more makes `overLimit` true. */
  readonly disk: number;
}

export const DEFAULT_SPOOL_LIMITS: SpoolLimits = { memory: 64 * 1024 * 1024, disk: 4 * 1024 * 1024 * 1024 };

export class SpoolEntry {
  private readonly spool: PackSpool;
  readonly size: number;
  bytes?: Uint8Array;
  file?: string;
  private holders: number;
  /** A failed or stopped upload may still read `bytes`: the collector frees them, not drop(). */
  shared = false;

  constructor(spool: PackSpool, bytes: Uint8Array, holders: number) {
    this.spool = spool;
    this.bytes = bytes;
    this.size = bytes.length;
    this.holders = holders;
  }

  /** The pack's bytes, from memory or from the spool file. */
  async load(): Promise<Uint8Array> {
    if (this.bytes) return this.bytes;
    return fs.promises.readFile(this.file!);
  }

  /**
   * One destination is done with this pack (stored it, or was detached). `stillReferenced`: its upload
   * failed or was stopped, and the store may still hold the bytes: they are then never freed by hand.
   */
  release(stillReferenced = false): void {
    if (stillReferenced) this.shared = true;
    if (--this.holders === 0) this.spool.drop(this);
  }
}

export class PackSpool {
  private readonly dir: string;
  private readonly limits: SpoolLimits;
  /** Entries with bytes in memory, oldest first. */
  private readonly inMemory = new Set<SpoolEntry>();
  private memoryBytes = 0;
  private diskBytes = 0;
  private dirMade = false;

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
   * Holds a pack for `holders` destinations. The spool owns `bytes` from then on: when the last holder
   * releases the pack (every destination has stored it, or left), its memory is freed at once. Left to
   * the collector, dead 16 MiB packs piled up on the main thread (bench/PROFILE.md, "Backup memory: dead
   * buffers freed at once").
   */
  add(bytes: Uint8Array, holders: number): SpoolEntry {
    const entry = new SpoolEntry(this, bytes, holders);
    if (holders === 0) return entry;
    this.inMemory.add(entry);
    this.memoryBytes += entry.size;
    this.spill();
    return entry;
  }

  private spill(): void {
    for (const entry of this.inMemory) {
      if (this.memoryBytes <= this.limits.memory) return;
      if (!this.dirMade) {
        fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        this.dirMade = true;
      }
      const file = path.join(this.dir, `${crypto.randomBytes(8).toString('hex')}.pack`);
      fs.writeFileSync(file, entry.bytes!, { mode: 0o600 });
      entry.file = file;
      entry.bytes = undefined;
      this.inMemory.delete(entry);
      this.memoryBytes -= entry.size;
      this.diskBytes += entry.size;
    }
  }

  drop(entry: SpoolEntry): void {
    if (entry.bytes) {
      this.inMemory.delete(entry);
      this.memoryBytes -= entry.size;
      if (!entry.shared) discard(entry.bytes);
      entry.bytes = undefined;
    } else if (entry.file) {
      fs.rmSync(entry.file, { force: true });
      this.diskBytes -= entry.size;
      entry.file = undefined;
    }
  }

  /** Removes the spool directory and whatever is left in it. */
  close(): void {
    if (this.dirMade) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
