// The in-memory blob index: blob id → (pack, offset, length, plaintext length, type), built from the
// repository's index files and extended as packs are sealed.
import { toHex } from '../format/bytes.ts';
import { SALT_BYTES } from '../format/crypto.ts';
import type { IndexedPack } from '../format/index-file.ts';
import type { BlobType, PackEntry } from '../format/pack.ts';
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

export class BlobIndex {
  /** Pack id → its key salt (8 words), then the end of its last blob (1 word). */
  private readonly packs = new IdTable(SALT_WORDS + 1);
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
    let packNo = this.packs.find(pack.id);
    if (packNo < 0) {
      const record = new Uint32Array(SALT_WORDS + 1);
      new Uint8Array(record.buffer).set(pack.salt);
      packNo = this.packs.add(pack.id, record);
    }
    let added = 0;
    let extent = this.packs.word(packNo, SALT_WORDS);
    for (const e of pack.entries) {
      if (this.addBlob(packNo, e)) added++;
      extent = Math.max(extent, e.offset + e.length);
    }
    this.packs.setWord(packNo, SALT_WORDS, extent);
    return added;
  }

  private addBlob(packNo: number, e: PackEntry): boolean {
    const r = this.record;
    r[0] = (packNo | (e.type ? TYPE_BIT : 0)) >>> 0;
    r[1] = e.offset;
    r[2] = e.length;
    r[3] = e.rawLength;
    return this.blobs.add(e.id, r) >= 0;
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
      packExtent: this.packs.word(packNo, SALT_WORDS),
    };
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
