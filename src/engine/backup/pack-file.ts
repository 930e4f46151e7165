// A chunk worker's data pack, written straight into a file of the spool directory as it is filled,
// as restic does: no thread holds a data pack in memory (bench/PROFILE.md, "Data packs in spool files").
import crypto from 'node:crypto';
import { PackBuilder, type PackEntry } from '../../format/pack.ts';
import type { SpoolFile } from '../spool.ts';

/** Bytes gathered before each write: a blob arrives in up to four pieces, most of them tiny. */
export const STAGING_BYTES = 1024 * 1024;

export interface SealedPackFile {
  readonly id: string;
  readonly salt: Uint8Array;
  readonly file: SpoolFile;
  readonly entries: PackEntry[];
}

/** The spool directory could not take a pack: the run cannot go on (unlike a source file that fails). */
export class SpoolWriteError extends Error {
  override readonly name = 'SpoolWriteError';
}

export class PackFileWriter extends PackBuilder {
  private readonly file: SpoolFile;
  /** The spool directory, for messages. */
  private readonly dir: string;
  /** The pack's id is the SHA-256 of its bytes, hashed as they go out. */
  private readonly hash = crypto.createHash('sha256');
  private readonly staging: Buffer;
  private staged = 0;

  /**
   * `file`: an empty spool file of `dir`. `staging`: the worker's buffer for gathering small writes,
   * shared by its packs one after another.
   */
  constructor(dataKey: Buffer, file: SpoolFile, dir: string, staging: Buffer) {
    super(dataKey);
    this.file = file;
    this.dir = dir;
    this.staging = staging;
  }

  get size(): number {
    return this.file.size + this.staged;
  }

  protected append(chunk: Uint8Array): void {
    this.hash.update(chunk);
    if (this.staged + chunk.length > this.staging.length) this.writeStaged();
    if (chunk.length >= this.staging.length) this.write(chunk);
    else {
      this.staging.set(chunk, this.staged);
      this.staged += chunk.length;
    }
  }

  private writeStaged(): void {
    const staged = this.staging.subarray(0, this.staged);
    this.staged = 0;
    this.write(staged);
  }

  private write(bytes: Uint8Array): void {
    try {
      this.file.append(bytes);
    } catch (err) {
      throw new SpoolWriteError(`cannot write a pack to the spool directory ${this.dir}: ${(err as Error).message}`);
    }
  }

  /** The finished pack, in its file. */
  seal(): SealedPackFile {
    this.finish();
    this.writeStaged();
    return { id: this.hash.digest('hex'), salt: this.salt, file: this.file, entries: this.entries };
  }
}
