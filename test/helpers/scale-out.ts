// A source tree for the scale-out tests with worker processes, a fresh repository beside it, the size
// of a repository folder, and the killing of a worker in the middle of a shard.
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { initRepository, Repository } from '../../src/repo/repository.ts';
import type { LocalWorker } from '../../src/scale-out/local-workers.ts';
import type { ShardWork } from '../../src/scale-out/shard-worker.ts';
import type { StoreSettings } from '../../src/store/configured-store.ts';
import { LocalStore } from '../../src/store/local.ts';
import { seededBytes } from './tree.ts';

export const MiB = 1024 * 1024;

/** About 2 000 small files and 24 MiB of random data in 1 MiB files, over six top-level directories. */
export function makeShardedTree(root: string, blobs = 4): { root: string; randomBytes: number } {
  let randomBytes = 0;
  for (let top = 0; top < 6; top++) {
    for (let sub = 0; sub < 10; sub++) {
      const d = path.join(root, `top-${top}`, `sub-${sub}`);
      fs.mkdirSync(d, { recursive: true });
      for (let f = 0; f < 32; f++) fs.writeFileSync(path.join(d, `f${f}`), `${top}/${sub}/${f}\n`.repeat(1 + f));
    }
    for (let b = 0; b < blobs; b++) {
      fs.writeFileSync(path.join(root, `top-${top}`, `blob-${b}.bin`), seededBytes(`workers ${top} ${b}`, MiB));
      randomBytes += MiB;
    }
  }
  fs.writeFileSync(path.join(root, 'loose'), 'loose');
  return { root, randomBytes };
}

/**
 * A sharded tree (one 1 MiB blob per top-level directory) under `dir`/source and a new repository with
 * passphrase 'pass' on the replicas named, opened; it closes when the test ends.
 */
export async function shardedTreeAndRepository(t: TestContext, dir: string, replicas = ['repo']): Promise<{ source: string; locations: string[]; repo: Repository }> {
  const { root: source } = makeShardedTree(path.join(dir, 'source'), 1);
  const locations = replicas.map((name) => path.join(dir, name));
  await initRepository(locations.map((d) => new LocalStore(d)), 'pass');
  const repo = await Repository.open(locations.map((d) => new LocalStore(d)), 'pass');
  t.after(() => repo.close());
  return { source, locations, repo };
}

export function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  return total;
}

/**
 * Uploads of 2 MiB/s for each worker: a shard of the sharded tree (4 MiB of random data) then takes
 * seconds to store after its first pack, whatever the machine's speed, which gives MidShardKiller its
 * window. Reading alone, a fast machine read a shard whole between two progress reports, and a loaded
 * one was killed before it had stored anything.
 */
export const SLOW_UPLOADS: StoreSettings = { limitUpload: ['2M'] };

/**
 * Kills with SIGKILL the first worker that reports a stored pack of a shard of several MiB (an
 * `onProgress` for startLocalWorkers; `workers` is set once they are started). Any worker may be the
 * one: which of them claims a shard first is up to the machine.
 */
export class MidShardKiller {
  workers: readonly LocalWorker[] = [];
  victim?: { readonly worker: string; readonly index: number };

  readonly onProgress = (worker: string, index: number, bytes: number, work: ShardWork): void => {
    if (this.victim || bytes < 2 * MiB || work.objectsStored === 0) return;
    this.victim = { worker, index };
    this.workers.find((w) => w.name === worker)!.child.kill('SIGKILL');
  };
}
