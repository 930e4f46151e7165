// Readers run beside backups: a backup that commits while a reader loads the index is no damage, and its
// snapshot reads back.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCheck } from '../src/engine/check.ts';
import { initRepository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { tempDir } from './helpers/cli.ts';
import { lateBackup } from './helpers/late-commit.ts';
import { backup, PASS, snapshotContent, withRepo } from './helpers/lifecycle.ts';
import { seededBytes } from './helpers/tree.ts';

function source(dir: string, name: string, size: number): string {
  const root = path.join(dir, name);
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'file'), seededBytes(name, size));
  return root;
}

// Regression: check loaded the index, then listed the snapshots. A backup that committed in between
// (its index file, then its snapshot) gave a snapshot whose blobs no loaded index file listed, and check
// reported them missing from a healthy repository.
test('a backup that commits while check loads the index is no damage', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'repo');
  await initRepository([new LocalStore(root)], PASS);
  await backup([new LocalStore(root)], [source(dir, 'a', 300_000)]);
  const late = await lateBackup(root, source(dir, 'b', 300_000));
  const result = await withRepo([late.store], (repo) => runCheck(repo, { readData: { kind: 'all' }, onProgress: (stage) => (late.armed = stage === 'loading index') }));
  assert.ok(late.committed, 'the other backup committed during the check');
  assert.deepEqual(result.errors, []);
  const after = await withRepo([new LocalStore(root)], (repo) => runCheck(repo, { readData: { kind: 'all' } }));
  assert.deepEqual(after.errors, []);
  assert.equal(after.snapshots, 2);
});

// Regression: a reader loaded the index, then listed the snapshots; `restore latest` beside a backup that
// committed in between picked the new snapshot and failed with "blob … is not in the index".
for (const earlier of [true, false]) {
  test(`a snapshot committed after the index was loaded reads back: the reader loads the new index files (${earlier ? 'an earlier backup' : 'an empty repository'})`, { timeout: 60_000 }, async (t) => {
    const dir = tempDir(t);
    const root = path.join(dir, 'repo');
    await initRepository([new LocalStore(root)], PASS);
    if (earlier) await backup([new LocalStore(root)], [source(dir, 'a', 300_000)]);
    const late = await lateBackup(root, source(dir, 'b', 300_000));
    await withRepo([late.store], async (repo) => {
      late.armed = true;
      await repo.loadIndex();
      late.armed = false;
      assert.ok(late.committed, 'the other backup committed while the index was loaded');
      const latest = (await repo.listSnapshots()).at(-1)!;
      assert.equal(latest.id, late.snapshotId);
      const files = await Promise.all([snapshotContent(repo, latest), snapshotContent(repo, latest)]);
      assert.deepEqual([...files[0].values()], [crypto.hash('sha256', seededBytes('b', 300_000))]);
      assert.deepEqual(files[1], files[0]);
    });
  });
}
