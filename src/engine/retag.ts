// Changing a snapshot's tags. Snapshots are write-once and named by their content, so a new snapshot is
// written (with `replaces` naming the old one) on every replica that holds the old one, and only then
// is the old one deleted: a crash in between leaves both, the old one hidden by listSnapshots, and the
// next run deletes it.
import type { Repository, StoredSnapshot } from '../repo/repository.ts';
import { idOf } from '../store/store.ts';

export interface TagChange {
  readonly add?: readonly string[];
  readonly remove?: readonly string[];
  /** Replaces every tag (then add/remove apply on top). */
  readonly set?: readonly string[];
}

export function applyTagChange(tags: readonly string[], change: TagChange): string[] {
  const result = new Set(change.set ?? tags);
  for (const t of change.add ?? []) result.add(t);
  for (const t of change.remove ?? []) result.delete(t);
  return [...result].sort();
}

/** Rewrites `stored` with its new tags; returns the new id, or undefined when the tags do not change. */
export async function retag(repo: Repository, stored: StoredSnapshot, change: TagChange): Promise<string | undefined> {
  const tags = applyTagChange(stored.snapshot.tags, change);
  if (tags.length === stored.snapshot.tags.length && tags.every((t, i) => t === stored.snapshot.tags[i])) return undefined;
  const oldName = `snapshots/${stored.id}`;
  const sealed = repo.sealSnapshot({ ...stored.snapshot, tags, replaces: stored.id });
  // Only where the old one is: a replica that lacks it may lack what it points at, too.
  const holders = [];
  for (const store of repo.stores) if (await store.stat(oldName)) holders.push(store);
  for (const store of holders) await store.put(sealed.name, sealed.bytes);
  for (const store of holders) await store.delete(oldName);
  return idOf(sealed.name);
}

/** Deletes snapshots that a newer one replaces (left by an interrupted rewrite); returns how many. */
export async function removeReplaced(repo: Repository): Promise<number> {
  const current = await repo.listSnapshots();
  const replaced = new Set(current.map((s) => s.snapshot.replaces).filter((id): id is string => id !== undefined));
  let removed = 0;
  for (const store of repo.stores) {
    for await (const obj of store.list('snapshots')) {
      if (!replaced.has(idOf(obj.name))) continue;
      await store.delete(obj.name);
      removed++;
    }
  }
  return removed;
}
