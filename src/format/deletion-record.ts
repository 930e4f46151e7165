// Deletion records (`deletions/<id>`, docs/FORMAT.md section 12.2): snapshots forgotten, packs marked for
// deletion, index files superseded, and the writers that may not have seen the record. Permanent facts:
// never changed, replicated, kept after the objects they name are gone.
import { ByteReader, ByteWriter, FormatError } from './bytes.ts';
import { ID_BYTES } from './crypto.ts';

const RECORD_VERSION = 1;
/** Writer ids are 128-bit random numbers (writer-marker.ts). */
export const WRITER_ID_BYTES = 16;
/** Host names are for people; a longer one is a damaged record. */
const MAX_HOST_BYTES = 1024;

export interface DeletionRecord {
  /** When it was written, by the writing host's clock (informational only). */
  readonly timeMs: number;
  readonly host: string;
  readonly snapshots: readonly Buffer[];
  readonly packs: readonly Buffer[];
  readonly indexes: readonly Buffer[];
  readonly writers: readonly Buffer[];
}

export function encodeDeletionRecord(record: DeletionRecord): Buffer {
  const host = Buffer.from(record.host);
  const idBytes = (record.snapshots.length + record.packs.length + record.indexes.length) * ID_BYTES + record.writers.length * WRITER_ID_BYTES;
  const w = new ByteWriter(64 + host.length + idBytes).u8(RECORD_VERSION).uint(record.timeMs).lengthPrefixed(host.subarray(0, MAX_HOST_BYTES));
  for (const [list, size] of [
    [record.snapshots, ID_BYTES],
    [record.packs, ID_BYTES],
    [record.indexes, ID_BYTES],
    [record.writers, WRITER_ID_BYTES],
  ] as const) {
    w.uint(list.length);
    for (const id of list) {
      if (id.length !== size) throw new RangeError(`an id of ${id.length} bytes in a deletion record (expected ${size})`);
      w.bytes(id);
    }
  }
  return w.finish();
}

/** Reads `count` ids of `size` bytes, after checking that the bytes left can hold them. */
function readIds(r: ByteReader, size: number, what: string, list: string): Buffer[] {
  const count = r.uint();
  if (count > r.remaining / size) throw new FormatError(`${what} claims ${count} ${list}, more than its ${r.remaining} bytes can hold`);
  const ids = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) ids[i] = Buffer.from(r.bytes(size));
  return ids;
}

export function decodeDeletionRecord(bytes: Uint8Array, what: string): DeletionRecord {
  const r = new ByteReader(bytes, what);
  const version = r.u8();
  if (version !== RECORD_VERSION) throw new FormatError(`${what}: unknown deletion record version ${version}`);
  const timeMs = r.uint();
  const hostLength = r.uint();
  if (hostLength > MAX_HOST_BYTES) throw new FormatError(`${what}: a host name of ${hostLength} bytes`);
  const host = Buffer.from(r.bytes(hostLength)).toString('utf8');
  const record = {
    timeMs,
    host,
    snapshots: readIds(r, ID_BYTES, what, 'snapshots'),
    packs: readIds(r, ID_BYTES, what, 'packs'),
    indexes: readIds(r, ID_BYTES, what, 'index files'),
    writers: readIds(r, WRITER_ID_BYTES, what, 'writers'),
  };
  r.expectEnd();
  return record;
}
