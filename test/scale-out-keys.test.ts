// A scaled-out backup's worker processes open the repository with the master keys the coordinator has
// unwrapped (sent over their IPC channel), so none of them derives a key from the passphrase again
// (Argon2id, some 0.2 CPU-seconds per open). Keys that are not the repository's are refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LocalScaledBackup } from '../src/scale-out/local-run.ts';
import { LocalStore } from '../src/store/local.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { shardedTreeAndRepository } from './helpers/scale-out.ts';

test('worker processes back up with the keys the coordinator unwrapped: they read no key file', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const { source, locations: [repoDir], repo } = await shardedTreeAndRepository(t, dir);
  // Without key files, a worker could only open the repository with the keys it was handed.
  fs.renameSync(path.join(repoDir, 'keys'), path.join(dir, 'keys-away'));
  let workers = 0;
  const run = new LocalScaledBackup(repo, { locations: [repoDir], stores: {}, paths: [source], workers: 2, onQueued: (_plan, started) => (workers = started) });
  const { snapshot } = await run.run();
  assert.equal(workers, 2);
  assert.ok(snapshot.summary.totalFiles > 0);
  fs.renameSync(path.join(dir, 'keys-away'), path.join(repoDir, 'keys'));
  ok(['check', '--read-data', '--repo', repoDir], { env: { COFFER_PASSWORD: 'pass' } });
});

test("another repository's keys do not open a repository", async (t) => {
  const dir = tempDir(t);
  const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
  await initRepository([new LocalStore(a)], 'pass');
  await initRepository([new LocalStore(b)], 'pass');
  const repoA = await Repository.open([new LocalStore(a)], 'pass');
  t.after(() => repoA.close());
  await assert.rejects(Repository.open([new LocalStore(b)], { keys: repoA.keys, keyId: repoA.keyId }), /fails its authentication check/);
  const again = await Repository.open([new LocalStore(a)], { keys: repoA.keys, keyId: repoA.keyId });
  assert.equal(again.config.id, repoA.config.id);
  await again.close();
});
