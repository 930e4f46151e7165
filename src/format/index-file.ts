// Index files: which blobs each pack holds and where. Written after the packs they list are durable
// (invariant 2), also as checkpoints during a long backup, so an interrupted run can be resumed.
import { ByteReader, ByteWriter, FormatError } from './bytes.ts';
import { ID_BYTES, SALT_BYTES } from './crypto.ts';
import { BlobType, checkEntry, type PackEntry } from './pack.ts';

export interface IndexedPack {
  readonly id: Buffer;
  /** The pack's key salt (also in its trailer), so a blob can be read with one range request. */
  readonly salt: Buffer;
  readonly entries: readonly PackEntry[];
}

const INDEX_VERSION = 1;

export function encodeIndex(packs: readonly IndexedPack[]): Buffer {
  const encoder = new IndexEncoder();
  visitPacks(packs, encoder);
  return encoder.finish();
}

/** Tells `visitor` of packs held as objects, as a scan of their index file would. */
export function visitPacks(packs: readonly IndexedPack[], visitor: IndexVisitor): void {
  for (const p of packs) {
    visitor.pack(p.id, p.salt, p.entries.length);
    for (const e of p.entries) visitor.blob(e.type, e.id, e.offset, e.length, e.rawLength);
  }
}

/** What a scan of an index file reports, in order; ids and salts are views into the scanned bytes. */
export interface IndexVisitor {
  pack(id: Uint8Array, salt: Uint8Array, blobs: number): void;
  blob(type: BlobType, id: Uint8Array, offset: number, length: number, rawLength: number): void;
}

/**
 * Writes an index file pack by pack and entry by entry, so that a prune rewriting millions of entries
 * copies them from a scan without an object per blob. Each pack must be followed by exactly the number
 * of blobs it declares.
 */
export class IndexEncoder implements IndexVisitor {
  private readonly body = new ByteWriter(1024);
  packs = 0;
  blobs = 0;

  pack(id: Uint8Array, salt: Uint8Array, blobs: number): void {
    this.body.bytes(id).bytes(salt).uint(blobs);
    this.packs++;
  }

  blob(type: BlobType, id: Uint8Array, offset: number, length: number, rawLength: number): void {
    this.body.u8(type).bytes(id).uint(offset).uint(length).uint(rawLength);
    this.blobs++;
  }

  finish(): Buffer {
    const body = this.body.finish();
    const head = new ByteWriter(16).u8(INDEX_VERSION).uint(this.packs).finish();
    return Buffer.concat([head, body]);
  }
}

/** The fewest bytes a pack and a blob entry take: declared counts are checked against what is left. */
const MIN_PACK_BYTES = ID_BYTES + SALT_BYTES + 1;
const MIN_BLOB_BYTES = 1 + ID_BYTES + 3;

/**
 * Reads an index file without building an object per blob (a prune or a big restore loads millions of
 * them straight into the typed-array index).
 */
export function scanIndex(bytes: Uint8Array, what: string, visitor: IndexVisitor): void {
  const r = new ByteReader(bytes, what);
  const version = r.u8();
  if (version !== INDEX_VERSION) throw new FormatError(`${what}: unknown index version ${version}`);
  for (let i = r.count(MIN_PACK_BYTES); i > 0; i--) {
    const id = r.bytes(ID_BYTES);
    const salt = r.bytes(SALT_BYTES);
    const blobs = r.count(MIN_BLOB_BYTES);
    visitor.pack(id, salt, blobs);
    for (let j = 0; j < blobs; j++) {
      const type = r.u8();
      if (type !== BlobType.Data && type !== BlobType.Tree) throw new FormatError(`${what}: unknown blob type ${type}`);
      const id = r.bytes(ID_BYTES);
      const offset = r.uint();
      const length = r.uint();
      const rawLength = r.uint();
      checkEntry({ type, offset, length, rawLength }, what);
      visitor.blob(type, id, offset, length, rawLength);
    }
  }
  r.expectEnd();
}

export function decodeIndex(bytes: Uint8Array, what: string): IndexedPack[] {
  const packs: IndexedPack[] = [];
  let entries: PackEntry[] = [];
  scanIndex(bytes, what, {
    pack: (id, salt) => {
      entries = [];
      packs.push({ id: Buffer.from(id), salt: Buffer.from(salt), entries });
    },
    blob: (type, id, offset, length, rawLength) => entries.push({ type, id: Buffer.from(id), offset, length, rawLength }),
  });
  return packs;
}

