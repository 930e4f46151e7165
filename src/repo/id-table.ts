// A compact hash table from 32-byte ids to fixed-size records: ~54 bytes per entry for the blob index,
// where a JS Map of hex strings would cost ~200. Entries live in fixed-size pages, so growing never
// copies them; an open-addressing slot table maps a hash to entry number + 1. Ids and slots are in
// SharedArrayBuffers so worker threads can test membership (IdSetView) while the owner keeps adding.
import { ID_BYTES } from '../format/crypto.ts';

const PAGE_BITS = 16;
export const PAGE_ENTRIES = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_ENTRIES - 1;
const MIN_SLOTS = 1 << 10;

/** What a worker needs to look ids up: the slot table and the id pages, all shared memory. */
export interface IdSetShare {
  readonly slots: SharedArrayBuffer;
  readonly pages: readonly SharedArrayBuffer[];
}

function hashOf(id: Uint8Array): number {
  // Ids are HMAC/SHA-256 outputs: their first four bytes are already uniformly distributed.
  return ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) >>> 0;
}

function idEquals(page: Uint8Array, offset: number, id: Uint8Array): boolean {
  for (let i = 0; i < ID_BYTES; i++) if (page[offset + i] !== id[i]) return false;
  return true;
}

/** Entry number of `id`, or -1. Safe against a concurrent writer: slots are published after their id. */
function probe(slots: Uint32Array, pages: readonly Uint8Array[], id: Uint8Array): number {
  const mask = slots.length - 1;
  for (let s = hashOf(id) & mask; ; s = (s + 1) & mask) {
    const entry = Atomics.load(slots, s);
    if (entry === 0) return -1;
    const n = entry - 1;
    const page = pages[n >>> PAGE_BITS];
    // A page the reader has not been told about yet holds only ids it cannot be asked for reliably.
    if (page && idEquals(page, (n & PAGE_MASK) * ID_BYTES, id)) return n;
  }
}

export class IdTable {
  private slots: Uint32Array;
  private readonly idPages: Uint8Array[] = [];
  private readonly recordPages: Uint32Array[] = [];
  private readonly recordWords: number;
  private size = 0;
  /** Called after the slot table or page list changed, so readers in other threads can be updated. */
  onShareChanged?: () => void;

  constructor(recordWords: number) {
    this.recordWords = recordWords;
    this.slots = new Uint32Array(new SharedArrayBuffer(MIN_SLOTS * 4));
  }

  get count(): number {
    return this.size;
  }

  find(id: Uint8Array): number {
    return probe(this.slots, this.idPages, id);
  }

  /** Adds `id` with `record`; returns its entry number, or -1 when the id was already present. */
  add(id: Uint8Array, record: ArrayLike<number>): number {
    if (this.find(id) >= 0) return -1;
    const n = this.size;
    let shareChanged = false;
    if ((n & PAGE_MASK) === 0) {
      this.idPages.push(new Uint8Array(new SharedArrayBuffer(PAGE_ENTRIES * ID_BYTES)));
      this.recordPages.push(new Uint32Array(PAGE_ENTRIES * this.recordWords));
      shareChanged = true;
    }
    this.idPages[n >>> PAGE_BITS]!.set(id.subarray(0, ID_BYTES), (n & PAGE_MASK) * ID_BYTES);
    this.recordPages[n >>> PAGE_BITS]!.set(record, (n & PAGE_MASK) * this.recordWords);
    this.size = n + 1;
    if (this.size * 4 > this.slots.length * 3) {
      this.rehash(this.slots.length * 2);
      shareChanged = true;
    } else {
      this.insertSlot(this.slots, n);
    }
    if (shareChanged) this.onShareChanged?.();
    return n;
  }

  private insertSlot(slots: Uint32Array, n: number): void {
    const mask = slots.length - 1;
    let s = hashOf(this.id(n)) & mask;
    while (slots[s] !== 0) s = (s + 1) & mask;
    Atomics.store(slots, s, n + 1);
  }

  private rehash(slotCount: number): void {
    const slots = new Uint32Array(new SharedArrayBuffer(slotCount * 4));
    for (let n = 0; n < this.size; n++) this.insertSlot(slots, n);
    this.slots = slots;
  }

  id(n: number): Uint8Array {
    const offset = (n & PAGE_MASK) * ID_BYTES;
    return this.idPages[n >>> PAGE_BITS]!.subarray(offset, offset + ID_BYTES);
  }

  /** Word `word` of entry n's record. */
  word(n: number, word: number): number {
    return this.recordPages[n >>> PAGE_BITS]![(n & PAGE_MASK) * this.recordWords + word]!;
  }

  setWord(n: number, word: number, value: number): void {
    this.recordPages[n >>> PAGE_BITS]![(n & PAGE_MASK) * this.recordWords + word] = value;
  }

  /** Entry n's record as bytes (a view: copy it to keep it). */
  recordBytes(n: number): Uint8Array {
    const page = this.recordPages[n >>> PAGE_BITS]!;
    return new Uint8Array(page.buffer, (n & PAGE_MASK) * this.recordWords * 4, this.recordWords * 4);
  }

  share(): IdSetShare {
    return { slots: this.slots.buffer as SharedArrayBuffer, pages: this.idPages.map((p) => p.buffer as SharedArrayBuffer) };
  }

  /** Bytes held, for the ≤ 64 bytes per blob budget. */
  memoryBytes(): number {
    return this.slots.byteLength + this.idPages.length * PAGE_ENTRIES * (ID_BYTES + this.recordWords * 4);
  }
}

/** Read-only membership view of an IdTable in another thread. */
export class IdSetView {
  private slots: Uint32Array;
  private pages: Uint8Array[];

  constructor(share: IdSetShare) {
    this.slots = new Uint32Array(share.slots);
    this.pages = share.pages.map((p) => new Uint8Array(p));
  }

  update(share: IdSetShare): void {
    this.slots = new Uint32Array(share.slots);
    this.pages = share.pages.map((p) => new Uint8Array(p));
  }

  has(id: Uint8Array): boolean {
    return probe(this.slots, this.pages, id) >= 0;
  }
}
