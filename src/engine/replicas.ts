// Replicas of one repository: what each store holds, what one lacks compared with the others, and
// copying the missing objects in the safe order (keys, packs, index files, snapshots). Used by `sync`,
// `replica add`, `check --replicas`, and by a backup to bring a lagging destination up to date before
// it gets a new snapshot (invariant 3).
import { DELETIONS_DIR } from '../store/layout.ts';
import type { Store } from '../store/store.ts';
import type { Destination } from './destination.ts';

/** Replicated folders, in write order (writer markers belong to one store and are not copied). */
export const REPOSITORY_DIRS = ['keys', 'data', 'index', 'snapshots', DELETIONS_DIR] as const;

/** Object name → size, for everything a store holds (besides `config`). */
export type Inventory = Map<string, number>;

/** What `store` holds in `dirs` (default: every replicated folder). */
export async function takeInventory(store: Store, dirs: readonly string[] = REPOSITORY_DIRS): Promise<Inventory> {
  const inventory: Inventory = new Map();
  for (const dir of dirs) for await (const o of store.list(dir)) inventory.set(o.name, o.size);
  return inventory;
}

export interface MissingObject {
  readonly name: string;
  readonly size: number;
  /** A store that holds it. */
  readonly from: Store;
}

function rank(name: string): number {
  return REPOSITORY_DIRS.indexOf(name.slice(0, name.indexOf('/')) as (typeof REPOSITORY_DIRS)[number]);
}

/**
 * Objects some source holds and `target` lacks, in write order; `deleted` names what a deletion record
 * removed for good (a lagging source still holds it, and it must not come back).
 */
export function missingFrom(target: Inventory, sources: readonly { store: Store; inventory: Inventory }[], deleted: (name: string) => boolean = () => false): MissingObject[] {
  const missing = new Map<string, MissingObject>();
  for (const { store, inventory } of sources) {
    for (const [name, size] of inventory) if (!target.has(name) && !missing.has(name) && !deleted(name)) missing.set(name, { name, size, from: store });
  }
  return [...missing.values()].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}

export interface Mismatch {
  readonly name: string;
  /** Locations that lack the object. */
  readonly missingOn: string[];
  /** Locations whose copy has another size than the others (damaged). */
  readonly differentOn: string[];
}

/** Every object that is not the same on all replicas. */
export function compareReplicas(replicas: readonly { store: Store; inventory: Inventory }[]): Mismatch[] {
  const names = new Set(replicas.flatMap((r) => [...r.inventory.keys()]));
  const result: Mismatch[] = [];
  for (const name of [...names].sort()) {
    const sizes = replicas.map((r) => r.inventory.get(name));
    const counts = new Map<number, number>();
    for (const s of sizes) if (s !== undefined) counts.set(s, (counts.get(s) ?? 0) + 1);
    const usual = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    const missingOn = replicas.filter((_, i) => sizes[i] === undefined).map((r) => r.store.location);
    const differentOn = replicas.filter((_, i) => sizes[i] !== undefined && sizes[i] !== usual).map((r) => r.store.location);
    if (missingOn.length > 0 || differentOn.length > 0) result.push({ name, missingOn, differentOn });
  }
  return result;
}

/**
 * Copies `missing` to a destination in phases, each waiting for the one before: keys, packs, the index
 * files that list them, snapshots, deletion records. Rejects if the destination is detached.
 */
export async function copyMissing(destination: Destination, missing: readonly MissingObject[], priority = -1): Promise<void> {
  const phases = [['keys'], ['data'], ['index'], ['snapshots'], [DELETIONS_DIR]];
  for (const dirs of phases) {
    const objects = missing.filter((m) => dirs.includes(m.name.slice(0, m.name.indexOf('/'))));
    await Promise.all(objects.map((m) => destination.put({ name: m.name, size: m.size, load: () => m.from.get(m.name), priority })));
  }
}
