// The in-memory blob index: blob id → (pack, offset, length, plaintext length, type), built from the
// repository's index files and extended as packs are sealed.
import { toHex } from '../format/bytes.ts';
import { SALT_BYTES } from '../format/crypto.ts';
import type { IndexedPack } from '../format/index-file.ts';
import type { BlobType } from '../format/pack.ts';
import { IdTable, type IdSetShare } from './id-table.ts';

export interface BlobLocation {
  readonly type: BlobType;
  readonly packId: string;
  readonly salt: Buffer;
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
  /** Where the last blob the index knows of in this pack ends: reading [0, packExtent) reads them all. */
  readonly packExtent: number;
}

const TYPE_BIT = 0x80000000;
const SALT_WORDS = SALT_BYTES / 4;
/** Pack record: salt, the end of its last blob, then the number and the bytes of the blobs its index entries list. */
const PACK_EXTENT = SALT_WORDS;
const PACK_BLOBS = SALT_WORDS + 1;
const PACK_BYTES = SALT_WORDS + 2;
const PACK_WORDS = SALT_WORDS + 3;

export class BlobIndex {
  /** Pack id → its key salt (8 words), blob extent, blob count, blob bytes. */
  private readonly packs = new IdTable(PACK_WORDS);
  /** Blob id → [pack number | type bit, offset, length, rawLength]. */
  private readonly blobs = new IdTable(4);
  private readonly record = new Uint32Array(4);

  get blobCount(): number {
    return this.blobs.count;
  }

  get packCount(): number {
    return this.packs.count;
  }

  hasPack(id: Uint8Array): boolean {
    return this.packs.find(id) >= 0;
  }

  has(id: Uint8Array): boolean {
    return this.blobs.find(id) >= 0;
  }

  /** Adds a pack and its blobs; blobs already indexed elsewhere keep their first location. Returns the number of new blobs. */
  addPack(pack: IndexedPack): number {
    const { packNo, fresh } = this.openPack(pack.id, pack.salt);
    let added = 0;
    for (const e of pack.entries) if (this.addEntry(packNo, fresh, e.type, e.id, e.offset, e.length, e.rawLength)) added++;
    return added;
  }

  /**
   * The pack's number, added if new (`fresh`: its blobs count in its totals); entries follow with
   * addEntry. With index-file.ts's scanIndex this loads an index file without an object per blob.
   */
  openPack(id: Uint8Array, salt: Uint8Array): { packNo: number; fresh: boolean } {
    const packNo = this.packs.find(id);
    if (packNo >= 0) return { packNo, fresh: false };
    const record = new Uint32Array(PACK_WORDS);
    new Uint8Array(record.buffer).set(salt);
    return { packNo: this.packs.add(id, record), fresh: true };
  }

  /** Adds one blob of pack `packNo`; returns whether it was new (a blob already indexed keeps its first location). */
  addEntry(packNo: number, fresh: boolean, type: BlobType, id: Uint8Array, offset: number, length: number, rawLength: number): boolean {
    if (fresh) {
      this.packs.setWord(packNo, PACK_BLOBS, this.packs.word(packNo, PACK_BLOBS) + 1);
      this.packs.setWord(packNo, PACK_BYTES, this.packs.word(packNo, PACK_BYTES) + length);
    }
    this.packs.setWord(packNo, PACK_EXTENT, Math.max(this.packs.word(packNo, PACK_EXTENT), offset + length));
    const r = this.record;
    r[0] = (packNo | (type ? TYPE_BIT : 0)) >>> 0;
    r[1] = offset;
    r[2] = length;
    r[3] = rawLength;
    return this.blobs.add(id, r) >= 0;
  }

  lookup(id: Uint8Array): BlobLocation | undefined {
    const n = this.blobs.find(id);
    if (n < 0) return undefined;
    const head = this.blobs.word(n, 0);
    const packNo = head & ~TYPE_BIT;
    return {
      type: (head & TYPE_BIT ? 1 : 0) as BlobType,
      packId: toHex(this.packs.id(packNo)),
      salt: Buffer.from(this.packs.recordBytes(packNo).subarray(0, SALT_BYTES)),
      offset: this.blobs.word(n, 1),
      length: this.blobs.word(n, 2),
      rawLength: this.blobs.word(n, 3),
      packExtent: this.packs.word(packNo, PACK_EXTENT),
    };
  }

  // Entry-level access for prune, which keeps its per-blob and per-pack marks in typed arrays indexed
  // by these numbers instead of in objects.

  /** Entry number of a blob (0 ≤ n < blobCount), or -1. */
  blobNumber(id: Uint8Array): number {
    return this.blobs.find(id);
  }

  /** Pack number (0 ≤ p < packCount) of blob entry n. */
  packOfBlob(n: number): number {
    return this.blobs.word(n, 0) & ~TYPE_BIT;
  }

  blobLength(n: number): number {
    return this.blobs.word(n, 2);
  }

  blobType(n: number): BlobType {
    return (this.blobs.word(n, 0) & TYPE_BIT ? 1 : 0) as BlobType;
  }

  blobOffset(n: number): number {
    return this.blobs.word(n, 1);
  }

  blobRawLength(n: number): number {
    return this.blobs.word(n, 3);
  }

  /** Blob entry n's id (a view: copy it to keep it). */
  blobId(n: number): Uint8Array {
    return this.blobs.id(n);
  }

  /** Pack p's key salt (a view). */
  packSalt(p: number): Uint8Array {
    return this.packs.recordBytes(p).subarray(0, SALT_BYTES);
  }

  /** Pack number of a pack id, or -1. */
  packNumber(id: Uint8Array): number {
    return this.packs.find(id);
  }

  packId(p: number): Uint8Array {
    return this.packs.id(p);
  }

  /** Blobs, and their bytes, that the index entries of pack p list (copies found elsewhere first included). */
  packBlobs(p: number): { count: number; bytes: number } {
    return { count: this.packs.word(p, PACK_BLOBS), bytes: this.packs.word(p, PACK_BYTES) };
  }

  *packIds(): Iterable<string> {
    for (let n = 0; n < this.packs.count; n++) yield toHex(this.packs.id(n));
  }

  /** Shared view of the blob ids for worker threads; `onChange` fires when it must be sent again. */
  shareBlobs(onChange: (share: IdSetShare) => void): IdSetShare {
    this.blobs.onShareChanged = () => onChange(this.blobs.share());
    return this.blobs.share();
  }

  memoryBytes(): number {
    return this.blobs.memoryBytes() + this.packs.memoryBytes();
  }
}
