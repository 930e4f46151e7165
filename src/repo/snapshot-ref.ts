// Naming snapshots: a full id, a unique prefix, or `latest` (newest matching the filters).
import type { StoredSnapshot } from './repository.ts';
import { RepositoryError } from './repository.ts';

export interface SnapshotFilter {
  readonly host?: string;
  /** The snapshot must include every one of these paths. */
  readonly paths?: readonly string[];
  /** Tag groups, as restic's `--tag a,b --tag c`: the snapshot must have every tag of at least one group. */
  readonly tags?: readonly (readonly string[])[];
}

export function matchesFilter(s: StoredSnapshot, filter: SnapshotFilter): boolean {
  const snap = s.snapshot;
  if (filter.host !== undefined && snap.host !== filter.host) return false;
  if (filter.paths?.length && !filter.paths.every((p) => snap.paths.includes(p))) return false;
  if (filter.tags?.length && !filter.tags.some((group) => group.every((t) => snap.tags.includes(t)))) return false;
  return true;
}

/** `all` must be sorted oldest first (as Repository.listSnapshots returns them). */
export function resolveSnapshot(all: readonly StoredSnapshot[], ref: string, filter: SnapshotFilter = {}): StoredSnapshot {
  if (ref === 'latest') {
    const candidates = all.filter((s) => matchesFilter(s, filter));
    const newest = candidates[candidates.length - 1];
    if (!newest) throw new RepositoryError('no snapshot matches; list them with coffer snapshots');
    return newest;
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new RepositoryError(`"${ref}" is not a snapshot id; use an id, a unique prefix of one, or latest`);
  const matches = all.filter((s) => s.id.startsWith(ref));
  if (matches.length === 0) throw new RepositoryError(`no snapshot ${ref}; list them with coffer snapshots`);
  if (matches.length > 1) throw new RepositoryError(`snapshot prefix ${ref} is ambiguous (${matches.length} snapshots); give more digits`);
  return matches[0]!;
}
