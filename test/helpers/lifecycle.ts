// Engine-level helpers for the deletion tests: back up with a fresh Repository each time (as separate
// processes would), read every file of a snapshot back, and check a repository deeply.
import crypto from 'node:crypto';
import { BackupRun } from '../../src/engine/backup/backup.ts';
import { runCheck } from '../../src/engine/check.ts';
import { PruneRun, type PruneOptions, type PruneResult } from '../../src/engine/prune/prune.ts';
import { walkTree } from '../../src/engine/tree-walk.ts';
import { contentIds, NodeType } from '../../src/format/tree.ts';
import { Repository, type StoredSnapshot } from '../../src/repo/repository.ts';
import type { Store } from '../../src/store/store.ts';

export const PASS = 'lifecycle test';

export async function withRepo<T>(stores: Store[], work: (repo: Repository) => Promise<T>): Promise<T> {
  const repo = await Repository.open(stores, PASS);
  return work(repo);
}

/** One backup, as its own process would run it; returns the new snapshot's id. */
export async function backup(stores: Store[], paths: string[], options: { tags?: string[]; packSize?: number } = {}): Promise<string> {
  return withRepo(stores, async (repo) => {
    const result = await new BackupRun(repo, { paths, workers: 1, ...(options.packSize ? { packSize: options.packSize } : {}), ...(options.tags ? { tags: options.tags } : {}) }).run();
    return result.snapshotId;
  });
}

export async function prune(stores: Store[], options: PruneOptions = {}): Promise<PruneResult> {
  return withRepo(stores, (repo) => new PruneRun(repo, options).run());
}

/** Path → SHA-256 of the content, for every file of a snapshot, read back through the index. */
export async function snapshotContent(repo: Repository, snapshot: StoredSnapshot): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const { path, node } of walkTree(repo, Buffer.from(snapshot.snapshot.tree, 'hex'))) {
    if (node.type !== NodeType.File) continue;
    const hash = crypto.createHash('sha256');
    for (const id of contentIds(node)) hash.update(await repo.readBlob(id));
    files.set(path.toString(), hash.digest('hex'));
  }
  return files;
}

/** Every snapshot's content (by id), with the index loaded as a reader loads it. */
export async function allContent(stores: Store[]): Promise<Map<string, Map<string, string>>> {
  return withRepo(stores, async (repo) => {
    await repo.loadIndex();
    const out = new Map<string, Map<string, string>>();
    for (const s of await repo.listSnapshots()) out.set(s.id, await snapshotContent(repo, s));
    return out;
  });
}

/** `check --read-data`'s errors (none on a healthy repository). */
export async function checkErrors(stores: Store[]): Promise<string[]> {
  return withRepo(stores, async (repo) => (await runCheck(repo, { readData: { kind: 'all' } })).errors);
}

/** SHA-256 of each file of a source directory, keyed like snapshotContent's paths (below `name`). */
export function sha256(data: Uint8Array): string {
  return crypto.hash('sha256', data);
}
