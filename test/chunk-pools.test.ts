// Chunk worker threads kept from one backup run to the next (a scaled-out worker process's shards): the
// next run gets the same threads, and they skip no chunk because an earlier run sealed it. Only the
// next run's own index says what is stored: here the first run's packs are gone before the second.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { ChunkPools } from '../src/engine/backup/chunk-pools.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

test("a kept pool serves the next run, which stores again what the previous run sealed but the repository lost", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`pool ${i}`, 200_000));
  const repoDir = path.join(dir, 'repo');
  await initRepository([new LocalStore(repoDir)], 'pass');
  const pools = new ChunkPools();
  t.after(() => pools.close());
  const backup = async (): Promise<void> => {
    const repo = await Repository.open([new LocalStore(repoDir)], 'pass');
    try {
      await new BackupRun(repo, { paths: [source], parent: null, workers: 2, chunkPools: pools }).run();
    } finally {
      await repo.close();
    }
  };
  await backup();
  // What the first run stored is lost (a run whose uploads failed after its workers sealed the packs).
  for (const folder of ['data', 'index', 'snapshots']) {
    for (const entry of fs.readdirSync(path.join(repoDir, folder), { recursive: true, withFileTypes: true })) if (entry.isFile()) fs.rmSync(path.join(entry.parentPath, entry.name));
  }
  await backup();
  assert.equal(pools.started, 1, 'the second run took the kept pool');
  ok(['check', '--read-data', '--repo', repoDir], { env: { COFFER_PASSWORD: 'pass' } });
  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repoDir, 'latest', '--target', target], { env: { COFFER_PASSWORD: 'pass' } });
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});
