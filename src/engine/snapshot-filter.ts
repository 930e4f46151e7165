// Choosing and grouping snapshots: the filters (--host, --path, --tag) and --group-by, shared by
// `forget`, `snapshots --group-by` and every retention run (daemon, server). Groups are what a retention
// policy is applied to: by default one per host and set of paths, so a laptop's policy never removes a
// server's snapshots.
import { matchesFilter, type SnapshotFilter } from '../repo/snapshot-ref.ts';
import type { StoredSnapshot } from '../repo/repository.ts';

export type GroupField = 'host' | 'paths' | 'tags';

export const DEFAULT_GROUP_BY: readonly GroupField[] = ['host', 'paths'];

export class GroupByError extends Error {
  override name = 'GroupByError';
}

/** 'host,paths' → fields; '' groups nothing (one group of everything). */
export function parseGroupBy(text: string): GroupField[] {
  const fields = text.split(',').map((f) => f.trim()).filter(Boolean);
  for (const f of fields) if (f !== 'host' && f !== 'paths' && f !== 'tags') throw new GroupByError(`--group-by takes host, paths and tags separated by commas (or '' for one group), not "${f}"`);
  return [...new Set(fields as GroupField[])];
}

/** What the snapshots of a group share. */
export interface GroupKey {
  readonly host?: string;
  readonly paths?: readonly string[];
  readonly tags?: readonly string[];
}

export interface SnapshotGroup {
  readonly key: GroupKey;
  /** Oldest first. */
  readonly snapshots: StoredSnapshot[];
}

function keyOf(s: StoredSnapshot, by: readonly GroupField[]): GroupKey {
  return {
    ...(by.includes('host') ? { host: s.snapshot.host } : {}),
    ...(by.includes('paths') ? { paths: [...s.snapshot.paths].sort() } : {}),
    ...(by.includes('tags') ? { tags: [...s.snapshot.tags].sort() } : {}),
  };
}

/** Snapshots matching `filter`, in groups that keep the order of `snapshots` (oldest first from Repository.listSnapshots). */
export function groupSnapshots(snapshots: readonly StoredSnapshot[], by: readonly GroupField[], filter: SnapshotFilter = {}): SnapshotGroup[] {
  const groups = new Map<string, SnapshotGroup>();
  for (const s of snapshots) {
    if (!matchesFilter(s, filter)) continue;
    const key = keyOf(s, by);
    const id = JSON.stringify(key);
    let group = groups.get(id);
    if (!group) groups.set(id, (group = { key, snapshots: [] }));
    group.snapshots.push(s);
  }
  return [...groups.values()];
}

/** 'host vm, paths /a /b, tags daily' for headings; 'all snapshots' for an empty key. */
export function describeGroup(key: GroupKey): string {
  const parts = [
    ...(key.host !== undefined ? [`host ${key.host}`] : []),
    ...(key.paths !== undefined ? [`paths ${key.paths.join(' ') || '(none)'}`] : []),
    ...(key.tags !== undefined ? [`tags ${key.tags.join(',') || '(none)'}`] : []),
  ];
  return parts.join(', ') || 'all snapshots';
}
