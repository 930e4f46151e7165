// Reading and writing deletion records (docs/FORMAT.md 12.2), and what they say as a whole: which
// snapshots were forgotten, which packs are doomed, which index files were superseded. Records are
// read from every replica (a record is a permanent fact, wherever it is found).
import { FormatError, toHex } from '../format/bytes.ts';
import { decompressPayload, compressPayload } from '../format/compression.ts';
import { contentId, openObject, sealObject, type MasterKeys } from '../format/crypto.ts';
import { decodeDeletionRecord, encodeDeletionRecord, type DeletionRecord } from '../format/deletion-record.ts';
import { MAX_DELETION_RECORD_BYTES } from '../format/limits.ts';
import { DELETIONS_DIR } from '../store/layout.ts';
import { idOf, type Store } from '../store/store.ts';
import { IdTable } from './id-table.ts';

export interface LoadedRecord {
  readonly name: string;
  readonly record: DeletionRecord;
}

const NAME_ID = /^[0-9a-f]{64}$/;

export class DeletionRecords {
  readonly records: readonly LoadedRecord[];
  readonly forgotten = new Set<string>();
  readonly superseded = new Set<string>();
  private readonly doomed = new IdTable(0);

  constructor(records: readonly LoadedRecord[]) {
    this.records = records;
    for (const { record } of records) {
      for (const id of record.snapshots) this.forgotten.add(toHex(id));
      for (const id of record.indexes) this.superseded.add(toHex(id));
      for (const id of record.packs) this.doomed.add(id, []);
    }
  }

  get names(): Set<string> {
    return new Set(this.records.map((r) => r.name));
  }

  get doomedCount(): number {
    return this.doomed.count;
  }

  isDoomed(packId: Uint8Array): boolean {
    return this.doomed.find(packId) >= 0;
  }

  /** Whether `name` is a snapshot a record forgot. */
  forgets(name: string): boolean {
    return name.startsWith('snapshots/') && this.forgotten.has(idOf(name));
  }

  /**
   * Whether a record says the object is gone for good (a forgotten snapshot, a doomed pack, a superseded
   * index file): a replica that lacks it must not get it back from one that still has it.
   */
  deletes(name: string): boolean {
    const id = idOf(name);
    if (!NAME_ID.test(id)) return false;
    if (name.startsWith('snapshots/')) return this.forgotten.has(id);
    if (name.startsWith('index/')) return this.superseded.has(id);
    if (name.startsWith('data/')) return this.isDoomed(Buffer.from(id, 'hex'));
    return false;
  }
}

/**
 * What sealing and reading deletion records takes of a repository (the Repository passes itself): named
 * here so that this module, which the repository loads, does not depend on it.
 */
export interface RecordsRepository {
  readonly keys: MasterKeys;
  readonly stores: readonly Store[];
  readonly onDamaged?: (name: string, reason: string) => void;
  read<T>(name: string, decode: (bytes: Buffer) => T): Promise<T>;
}

export function sealDeletionRecord(repo: Pick<RecordsRepository, 'keys'>, record: DeletionRecord): { name: string; bytes: Buffer } {
  const bytes = sealObject(repo.keys.dataKey, 'deletion', compressPayload(encodeDeletionRecord(record)));
  return { name: `${DELETIONS_DIR}/${contentId(bytes)}`, bytes };
}

export function readDeletionRecord(repo: RecordsRepository, name: string): Promise<DeletionRecord> {
  return repo.read(name, (bytes) => {
    if (contentId(bytes) !== idOf(name)) throw new FormatError(`${name} does not match its name (damaged)`);
    return decodeDeletionRecord(decompressPayload(openObject(repo.keys.dataKey, 'deletion', bytes, name), { atMost: MAX_DELETION_RECORD_BYTES }, name), name);
  });
}

/**
 * Every record on every reachable replica. One that cannot be read anywhere is reported (onDamaged) and
 * skipped: no prune can complete it either, so the packs it names are never deleted on its account.
 */
export async function loadDeletionRecords(repo: RecordsRepository): Promise<DeletionRecords> {
  const names = new Set<string>();
  for (const store of repo.stores) for await (const o of store.list(DELETIONS_DIR)) names.add(o.name);
  const records: LoadedRecord[] = [];
  for (const name of [...names].sort()) {
    try {
      records.push({ name, record: await readDeletionRecord(repo, name) });
    } catch (err) {
      repo.onDamaged?.(name, (err as Error).message);
    }
  }
  return new DeletionRecords(records);
}
