// Snapshots at chosen times, hosts and tags, for retention tests: copies of a real snapshot (same tree)
// sealed again with other metadata and written to every replica, as a backup on that day would have.
import { Repository, type StoredSnapshot } from '../../src/repo/repository.ts';
import { idOf, type Store } from '../../src/store/store.ts';

export interface Stamp {
  readonly time: string;
  readonly host?: string;
  readonly paths?: string[];
  readonly tags?: string[];
  /** The snapshot this one replaces (as `coffer tag` writes). */
  readonly replaces?: string;
}

/** Writes one snapshot per stamp, each a copy of `template` with that metadata; returns them in order. */
export async function stampSnapshots(stores: Store[], passphrase: string, template: StoredSnapshot, stamps: readonly Stamp[]): Promise<StoredSnapshot[]> {
  const repo = await Repository.open(stores, passphrase);
  const written: StoredSnapshot[] = [];
  for (const stamp of stamps) {
    const snapshot = { ...template.snapshot, time: stamp.time, host: stamp.host ?? template.snapshot.host, paths: stamp.paths ?? template.snapshot.paths, tags: stamp.tags ?? [], ...(stamp.replaces ? { replaces: stamp.replaces } : {}) };
    const sealed = repo.sealSnapshot(snapshot);
    for (const store of stores) await store.put(sealed.name, sealed.bytes);
    written.push({ id: idOf(sealed.name), snapshot });
  }
  return written;
}
