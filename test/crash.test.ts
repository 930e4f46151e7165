// Crash consistency: prune and backup killed with SIGKILL at random points, on local and SFTP stores.
// After every kill the repository checks clean with all data read and every kept snapshot reads back
// byte for byte; a later prune finishes the work, and the markers the dead processes left block nothing.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runCheck } from '../src/engine/check.ts';
import { Repository } from '../src/repo/repository.ts';
import type { Store } from '../src/store/store.ts';
import { cofferAsync, HEAVY, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { snapshotContent } from './helpers/lifecycle.ts';
import { startRemotes, type Remotes, type StoreKind } from './helpers/remotes.ts';
import { seededBytes } from './helpers/tree.ts';

let remotes: Remotes;
before(async () => {
  remotes = await startRemotes();
});
after(() => remotes?.stop());

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every snapshot's files (path → sha256), read back in-process. */
async function contents(stores: Store[]): Promise<Map<string, Map<string, string>>> {
  const repo = await Repository.open(stores, PASSWORD);
  await repo.loadIndex();
  const out = new Map<string, Map<string, string>>();
  for (const s of await repo.listSnapshots()) out.set(s.id, await snapshotContent(repo, s));
  return out;
}

async function assertHealthy(stores: Store[], kept: Map<string, Map<string, string>>, when: string): Promise<void> {
  const repo = await Repository.open(stores, PASSWORD);
  const { errors } = await runCheck(repo, { readData: { kind: 'all' } });
  assert.deepEqual(errors, [], `${when}: check`);
  const now = await contents(stores);
  for (const [id, files] of kept) assert.deepEqual(now.get(id), files, `${when}: snapshot ${id.slice(0, 8)} lost data`);
}

/** A repository with three snapshots of small files sharing packs; the first is forgotten: prune has packs to delete and to repack. */
function setup(dir: string, location: string): { source: string; repos: string[] } {
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  const repos = ['--repo', location];
  const env = remotes.env;
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`f${i}`, 150_000));
  ok(['init', ...repos], { env });
  const first = summaryOf(ok(['backup', ...repos, '--json', source], { env }).stdout).snapshotId as string;
  for (let i = 0; i < 24; i += 2) fs.rmSync(path.join(source, `f${i}`));
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(source, `g${i}`), seededBytes(`g${i}`, 150_000));
  ok(['backup', ...repos, source], { env });
  ok(['forget', ...repos, first], { env });
  return { source, repos };
}

for (const kind of ['local', 'sftp'] as StoreKind[]) {
  // Local always; SFTP (the same code above a slower store) with the heavy tests.
  test(`SIGKILL during prune at random points (${kind}): always clean, nothing kept is lost, the next prune finishes`, { timeout: 240_000, ...(kind === 'local' ? {} : HEAVY) }, async (t) => {
    const dir = tempDir(t);
    const location = remotes.location(kind, dir);
    const { repos } = setup(dir, location);
    const stores = [remotes.open(location)];
    t.after(() => Promise.all(stores.map((s) => s.close())));
    const kept = await contents(stores);
    const env = remotes.env;
    for (let round = 0; round < (kind === 'local' ? 3 : 2); round++) {
      // Uploads throttled so that a kill lands inside repacking as often as before or after it.
      const run = cofferAsync(['prune', ...repos, '--max-unused', '0%', '--limit-upload', '3M'], { env });
      await sleep(300 + crypto.randomInt(2500));
      run.child.kill('SIGKILL');
      await run.done;
      await assertHealthy(stores, kept, `${kind}, after the kill of round ${round}`);
    }
    const done = summaryOf(ok(['prune', ...repos, '--max-unused', '0%', '--json'], { env }).stdout) as { waiting: { packs: number } };
    assert.equal(done.waiting.packs, 0, 'dead prunes do not hold the space');
    await assertHealthy(stores, kept, `${kind}, after a complete prune`);
    const again = summaryOf(ok(['prune', ...repos, '--max-unused', '0%', '--json'], { env }).stdout) as { deleted: { packs: number }; repacked: { packs: number } };
    assert.deepEqual([again.deleted.packs, again.repacked.packs], [0, 0], 'nothing left to do');
  });
}

test('SIGKILL of a backup running beside a prune: clean, nothing kept is lost; the next backup and prune succeed', { timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  const location = remotes.location('local', dir);
  const { source, repos } = setup(dir, location);
  const stores = [remotes.open(location)];
  let kept = await contents(stores);
  // A kill that lands after the backup wrote its snapshot leaves that snapshot, complete: count them.
  let committedByKilled = 0;
  for (let round = 0; round < 2; round++) {
    fs.writeFileSync(path.join(source, `new${round}`), seededBytes(`new${round}`, 4 << 20));
    const backup = cofferAsync(['backup', ...repos, '--limit-upload', '2M', source]);
    await sleep(200 + crypto.randomInt(1500));
    const prune = cofferAsync(['prune', ...repos]);
    await sleep(crypto.randomInt(1500));
    backup.child.kill('SIGKILL');
    await backup.done;
    const pruned = await prune.done;
    assert.ok(pruned.code === 0, `prune beside the killed backup: ${pruned.stderr}`);
    await assertHealthy(stores, kept, `after killing backup ${round}`);
    const now = await contents(stores);
    committedByKilled += now.size - kept.size;
    kept = now;
  }
  ok(['backup', ...repos, source]);
  ok(['prune', ...repos]);
  const before = kept;
  kept = await contents(stores);
  assert.equal(kept.size, 2 + committedByKilled);
  for (const [id, files] of before) assert.deepEqual(kept.get(id), files, `snapshot ${id.slice(0, 8)} after a complete backup and prune`);
  await assertHealthy(stores, kept, 'after a complete backup and prune');
  await Promise.all(stores.map((s) => s.close()));
});
