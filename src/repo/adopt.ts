// Resume after a crash (invariant 4): packs that reached a store but no index lists (the run died
// before its next checkpoint) are adopted by reading their headers, instead of being uploaded again.
import { idOf, type Store } from '../store/store.ts';
import type { Repository } from './repository.ts';
import { readPackHeader } from './pack-reader.ts';
import type { IndexedPack } from '../format/index-file.ts';

export interface AdoptResult {
  readonly packs: number;
  readonly blobs: number;
  /** Packs whose header could not be read: reported, left alone. */
  readonly damaged: { name: string; reason: string }[];
}

export async function adoptUnindexedPacks(repo: Repository, store: Store): Promise<AdoptResult> {
  const adopted: IndexedPack[] = [];
  const damaged: { name: string; reason: string }[] = [];
  let blobs = 0;
  for await (const obj of store.list('data')) {
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
  if (adopted.length > 0) {
    const index = repo.sealIndex(adopted);
    await store.put(index.name, index.bytes);
  }
  return { packs: adopted.length, blobs, damaged };
}
