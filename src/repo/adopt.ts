// Resume after a crash (invariant 4): packs that reached a store but no index lists (the run died
// before its next checkpoint) are adopted by reading their headers, instead of being uploaded again.
import type { IndexedPack } from '../format/index-file.ts';
import { idOf, type ObjectInfo, type Store } from '../store/store.ts';
import { readPackHeader } from './pack-reader.ts';
import type { Repository } from './repository.ts';

export interface AdoptResult {
  readonly packs: number;
  readonly blobs: number;
  /** The index file written for the adopted packs. */
  readonly index?: ObjectInfo;
  /** Packs whose header could not be read: reported, left alone. */
  readonly damaged: { name: string; reason: string }[];
}

/** `packs` are the store's data objects (from a listing the caller already has). */
export async function adoptUnindexedPacks(repo: Repository, store: Store, packs: Iterable<ObjectInfo>): Promise<AdoptResult> {
  const adopted: IndexedPack[] = [];
  const damaged: { name: string; reason: string }[] = [];
  let blobs = 0;
  for (const obj of packs) {
    const id = idOf(obj.name);
    if (!/^[0-9a-f]{64}$/.test(id) || repo.index.hasPack(Buffer.from(id, 'hex'))) continue;
    try {
      const pack = await readPackHeader(store, obj.name, obj.size, repo.keys.dataKey);
      blobs += repo.index.addPack(pack);
      adopted.push(pack);
    } catch (err) {
      damaged.push({ name: obj.name, reason: (err as Error).message });
    }
  }
  if (adopted.length === 0) return { packs: 0, blobs, damaged };
  const index = repo.sealIndex(adopted);
  await store.put(index.name, index.bytes);
  return { packs: adopted.length, blobs, damaged, index: { name: index.name, size: index.bytes.length } };
}
