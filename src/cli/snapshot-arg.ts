// The SNAP argument: an id, a unique prefix, or `latest`, optionally followed by `:/sub/path`.
import { SnapshotView } from '../engine/snapshot-view.ts';
import { resolveSnapshot, type SnapshotFilter } from '../repo/snapshot-ref.ts';
import type { Repository, StoredSnapshot } from '../repo/repository.ts';
import { UsageError } from './exit-codes.ts';

export async function pickSnapshot(repo: Repository, ref: string, filter: SnapshotFilter = {}): Promise<StoredSnapshot> {
  return resolveSnapshot(await repo.listSnapshots(), ref, filter);
}

export function splitSnapshotPath(arg: string): { ref: string; subpath: string } {
  const colon = arg.indexOf(':');
  return colon < 0 ? { ref: arg, subpath: '' } : { ref: arg.slice(0, colon), subpath: arg.slice(colon + 1) };
}

/** `SNAP[:PATH]` and an optional separate PATH argument (ls, dump): one path, given either way. */
export function snapshotAndPath(arg: string, separate: string | undefined): { ref: string; subpath: string } {
  const { ref, subpath } = splitSnapshotPath(arg);
  if (subpath !== '' && separate !== undefined) throw new UsageError(`give the path once: either ${arg} or ${ref} ${separate}`);
  return { ref, subpath: separate ?? subpath };
}

/** The snapshot `ref` names and its trees as every reader sees them (absolute paths). */
export async function openSnapshot(repo: Repository, ref: string, filter: SnapshotFilter = {}): Promise<{ stored: StoredSnapshot; view: SnapshotView }> {
  const stored = await pickSnapshot(repo, ref, filter);
  return { stored, view: await SnapshotView.open(repo, stored.snapshot) };
}
