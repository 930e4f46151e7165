// The SNAP argument: an id, a unique prefix, or `latest`, optionally followed by `:/sub/path`.
import { resolveSnapshot, type SnapshotFilter } from '../repo/snapshot-ref.ts';
import type { Repository, StoredSnapshot } from '../repo/repository.ts';

export async function pickSnapshot(repo: Repository, ref: string, filter: SnapshotFilter = {}): Promise<StoredSnapshot> {
  return resolveSnapshot(await repo.listSnapshots(), ref, filter);
}

export function splitSnapshotPath(arg: string): { ref: string; subpath: string } {
  const colon = arg.indexOf(':');
  return colon < 0 ? { ref: arg, subpath: '' } : { ref: arg.slice(0, colon), subpath: arg.slice(colon + 1) };
}
