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
/** The fewest bytes a pack and a blob entry take (with one-byte varints). */
const MIN_PACK_BYTES = ID_BYTES + SALT_BYTES + 1;
const MIN_BLOB_BYTES = 1 + ID_BYTES + 3;

export function encodeIndex(packs: readonly IndexedPack[]): Buffer {
  const w = new ByteWriter(1024).u8(INDEX_VERSION).uint(packs.length);
  for (const p of packs) {
    w.bytes(p.id).bytes(p.salt).uint(p.entries.length);
    for (const e of p.entries) w.u8(e.type).bytes(e.id).uint(e.offset).uint(e.length).uint(e.rawLength);
  }
  return w.finish();
}

export function decodeIndex(bytes: Uint8Array, what: string): IndexedPack[] {
  const r = new ByteReader(bytes, what);
  const version = r.u8();
  if (version !== INDEX_VERSION) throw new FormatError(`${what}: unknown index version ${version}`);
  const packs: IndexedPack[] = [];
  for (let i = r.count(MIN_PACK_BYTES); i > 0; i--) {
    const id = Buffer.from(r.bytes(ID_BYTES));
    const salt = Buffer.from(r.bytes(SALT_BYTES));
    const entries: PackEntry[] = [];
    for (let j = r.count(MIN_BLOB_BYTES); j > 0; j--) {
      const type = r.u8();
      if (type !== BlobType.Data && type !== BlobType.Tree) throw new FormatError(`${what}: unknown blob type ${type}`);
      const entry = { type, id: Buffer.from(r.bytes(ID_BYTES)), offset: r.uint(), length: r.uint(), rawLength: r.uint() };
      checkEntry(entry, what);
      entries.push(entry);
    }
    packs.push({ id, salt, entries });
  }
  r.expectEnd();
  return packs;
}

