// Packs: encrypted blobs one after another, then the encrypted header, then a fixed trailer. The header
// comes last so a pack can be streamed out while it is being filled, and read back with two range reads.
import crypto, { type KeyObject } from 'node:crypto';
import { ByteReader, ByteWriter, FormatError } from './bytes.ts';
import { discard } from './discard.ts';
import type { Framed } from './compression.ts';
import { ID_BYTES, SALT_BYTES, TAG_BYTES, aeadOpen, aeadSeal, contentId, counterNonce, deriveKey } from './crypto.ts';
import { BLOB_OVERHEAD, MAX_PACK_BYTES, MAX_PACK_HEADER_BYTES, maxBlobBytes } from './limits.ts';

export const BlobType = { Data: 0, Tree: 1 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];

export function blobTypeName(type: BlobType): string {
  return type === BlobType.Data ? 'data' : 'tree';
}

export interface PackEntry {
  readonly type: BlobType;
  readonly id: Buffer;
  /** Offset of the encrypted blob inside the pack. */
  readonly offset: number;
  /** Encrypted length (payload framing + AES-GCM tag). */
  readonly length: number;
  /** Plaintext length after decompression. */
  readonly rawLength: number;
}

/**
 * A blob's lengths must be possible: sealed it is its framed plaintext plus the tag (stored raw at
 * worst), its plaintext within the limit of its type, and it lies within a pack's limit.
 */
export function checkEntry(entry: Omit<PackEntry, 'id'>, what: string): void {
  const { type, offset, length, rawLength } = entry;
  if (rawLength > maxBlobBytes(type)) throw new FormatError(`${what}: a blob claims ${rawLength} bytes of plaintext, more than one may have`);
  if (length < BLOB_OVERHEAD || length > rawLength + BLOB_OVERHEAD) throw new FormatError(`${what}: a blob of ${rawLength} bytes cannot take ${length} bytes sealed`);
  if (offset + length > MAX_PACK_BYTES) throw new FormatError(`${what}: a blob at ${offset} lies beyond the end any pack may have`);
}

export interface SealedPack {
  readonly id: string;
  readonly salt: Buffer;
  readonly bytes: Buffer;
  readonly entries: PackEntry[];
}

const TRAILER_MAGIC = Buffer.from('CFP1');
export const TRAILER_BYTES = SALT_BYTES + 4 + TRAILER_MAGIC.length;
/** A blob's nonce is its offset in the pack (unique within the pack's key); the header uses the largest
 * 48-bit counter, which no offset can reach. */
const HEADER_NONCE = counterNonce(2 ** 48 - 1);
const HEADER_AAD = Buffer.from('coffer pack header');

export function blobAad(type: BlobType, id: Uint8Array): Buffer {
  const aad = Buffer.allocUnsafe(1 + ID_BYTES);
  aad[0] = type;
  aad.set(id, 1);
  return aad;
}

/** Bytes encrypted per call while packing a blob. */
const CIPHER_PIECE = 64 * 1024;

/** Address space reserved for a pack to grow in place (memory is committed only when written). */
const MAX_IN_PLACE = 64 * 1024 * 1024;

/** What a full pack's buffer grows by at least, in place. */
const GROWTH_STEP = 1024 * 1024;

/**
 * Builds one pack: encrypts each blob under the pack's own key and hands its bytes, in order, to the
 * subclass's `append` (memory or a file); `finish` adds the encrypted header and the trailer.
 */
export abstract class PackBuilder {
  protected readonly salt: Buffer;
  private readonly key: KeyObject;
  protected readonly entries: PackEntry[] = [];

  /** `salt` is random except in the published test vectors. */
  constructor(dataKey: Buffer, salt: Buffer = crypto.randomBytes(SALT_BYTES)) {
    this.salt = salt;
    this.key = deriveKey(dataKey, salt, 'coffer pack v1');
  }

  /** Bytes of the pack so far. */
  abstract get size(): number;

  protected abstract append(chunk: Uint8Array): void;

  get count(): number {
    return this.entries.length;
  }

  /** Encrypts one framed blob payload (see compression.ts) and appends it. */
  add(type: BlobType, id: Buffer, framed: Framed, rawLength: number): PackEntry {
    const offset = this.size;
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, counterNonce(offset));
    cipher.setAAD(blobAad(type, id));
    this.append(cipher.update(Uint8Array.of(framed.flag)));
    // Node's cipher writes each piece of ciphertext into a new buffer, copied on and freed at once.
    // Pieces below glibc's mmap threshold come back from its free lists warm; a blob-sized one came
    // from fresh pages each time, which fault (bench/PROFILE.md, "Pack memory reused").
    for (let at = 0; at < framed.body.length; at += CIPHER_PIECE) {
      const sealed = cipher.update(framed.body.subarray(at, at + CIPHER_PIECE));
      this.append(sealed);
      discard(sealed);
    }
    this.append(cipher.final());
    this.append(cipher.getAuthTag());
    const entry = { type, id, offset, length: this.size - offset, rawLength };
    this.entries.push(entry);
    return entry;
  }

  /** Appends the encrypted header and the trailer: the pack is complete. */
  protected finish(): void {
    const header = new ByteWriter(this.entries.length * 48 + 8).uint(this.entries.length);
    for (const e of this.entries) header.u8(e.type).bytes(e.id).uint(e.length).uint(e.rawLength);
    const sealedHeader = aeadSeal(this.key, HEADER_NONCE, HEADER_AAD, header.finish());
    const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
    this.salt.copy(trailer, 0);
    trailer.writeUInt32LE(sealedHeader.length, SALT_BYTES);
    TRAILER_MAGIC.copy(trailer, SALT_BYTES + 4);
    this.append(sealedHeader);
    this.append(trailer);
  }
}

/** A pack built in memory (tree packs, a prune's repacking), handed over whole when sealed. */
export class PackWriter extends PackBuilder {
  /**
   * One buffer for the whole pack, so blobs are copied once and a sealed pack can be handed over whole.
   * It is resizable: it starts at the expected pack size, grows in place when a blob crosses it, and
   * only the bytes written are backed by memory.
   */
  private buffer: ArrayBuffer;
  private view: Uint8Array;
  private bytes = 0;

  /** `capacity`: the buffer the pack starts with. */
  constructor(dataKey: Buffer, options: { capacity?: number; salt?: Buffer } = {}) {
    super(dataKey, options.salt);
    const capacity = options.capacity ?? 64 * 1024;
    this.buffer = new ArrayBuffer(capacity, { maxByteLength: Math.max(capacity * 4, MAX_IN_PLACE) });
    this.view = new Uint8Array(this.buffer);
  }

  get size(): number {
    return this.bytes;
  }

  protected append(chunk: Uint8Array): void {
    const needed = this.bytes + chunk.length;
    if (needed > this.buffer.byteLength) {
      // In place, by steps of GROWTH_STEP: V8 zero-fills what a buffer grows by, and a doubling zeroed
      // (and faulted in) megabytes that the sealed pack then did not use.
      const size = Math.min(Math.ceil(needed / GROWTH_STEP) * GROWTH_STEP, this.buffer.maxByteLength);
      if (needed <= size) this.buffer.resize(size);
      else {
        // Only a tree of a huge directory gets here: grow by copying.
        const size = needed * 2;
        const bigger = new ArrayBuffer(size, { maxByteLength: size * 2 });
        new Uint8Array(bigger).set(this.view.subarray(0, this.bytes));
        this.buffer = bigger;
      }
      this.view = new Uint8Array(this.buffer);
    }
    this.view.set(chunk, this.bytes);
    this.bytes = needed;
  }

  /**
   * The finished pack. Its bytes start a buffer no one else uses (transferable to another thread, with
   * their length), which may be longer than the pack.
   */
  seal(): SealedPack {
    this.finish();
    const bytes = Buffer.from(this.buffer, 0, this.bytes);
    return { id: contentId(bytes), salt: this.salt, bytes, entries: this.entries };
  }
}

/**
 * The most bytes a well-formed pack can have when its blobs end at `blobsEnd`: every blob takes at least
 * BLOB_OVERHEAD bytes and at most 48 bytes of header (plus the count, the header's tag and the trailer).
 */
export function maxPackBytesFor(blobsEnd: number): number {
  return blobsEnd + Math.floor(blobsEnd / BLOB_OVERHEAD) * 48 + 8 + TAG_BYTES + TRAILER_BYTES;
}

export interface PackTrailer {
  readonly salt: Buffer;
  readonly headerLength: number;
}

export function parseTrailer(trailer: Uint8Array, what: string): PackTrailer {
  if (trailer.length !== TRAILER_BYTES || !TRAILER_MAGIC.equals(trailer.subarray(SALT_BYTES + 4))) {
    throw new FormatError(`${what} has no pack trailer (truncated or not a pack)`);
  }
  const buf = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  const headerLength = buf.readUInt32LE(SALT_BYTES);
  if (headerLength < TAG_BYTES || headerLength > MAX_PACK_HEADER_BYTES) throw new FormatError(`${what} has a damaged trailer`);
  return { salt: Buffer.from(buf.subarray(0, SALT_BYTES)), headerLength };
}

export function packKey(dataKey: Buffer, salt: Uint8Array): KeyObject {
  return deriveKey(dataKey, salt, 'coffer pack v1');
}

/** Decrypts a pack header; `headerOffset` is where it starts, so blob offsets can be checked against it. */
export function openHeader(key: KeyObject, sealedHeader: Uint8Array, headerOffset: number, what: string): PackEntry[] {
  return decodeHeader(aeadOpen(key, HEADER_NONCE, HEADER_AAD, sealedHeader, `${what} header`), headerOffset, what);
}

/** Parses a decrypted pack header: its blobs must fill the pack exactly up to `headerOffset`. */
export function decodeHeader(plain: Uint8Array, headerOffset: number, what: string): PackEntry[] {
  const r = new ByteReader(plain, `${what} header`);
  // Each entry takes a type byte, an id and two varints.
  const count = r.count(1 + ID_BYTES + 2);
  const entries: PackEntry[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    if (type !== BlobType.Data && type !== BlobType.Tree) throw new FormatError(`${what} header: unknown blob type ${type}`);
    const id = Buffer.from(r.bytes(ID_BYTES));
    const length = r.uint();
    const rawLength = r.uint();
    const entry = { type, id, offset, length, rawLength };
    checkEntry(entry, `${what} header`);
    entries.push(entry);
    offset += length;
  }
  r.expectEnd();
  if (offset !== headerOffset) throw new FormatError(`${what} header lists ${offset} bytes of blobs, pack holds ${headerOffset}`);
  return entries;
}

/** Decrypts the blob stored at `offset` of a pack; returns the framed payload (see compression.ts). */
export function openBlob(key: KeyObject, offset: number, type: BlobType, id: Uint8Array, sealed: Uint8Array, what: string): Buffer {
  return aeadOpen(key, counterNonce(offset), blobAad(type, id), sealed, what);
}
