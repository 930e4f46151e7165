// Prune in the engine: unused packs go, mostly unused ones are repacked, the index is rewritten compact,
// and the two-phase rule holds against other writers (a running backup, one that reuses doomed data,
// one whose marker expired), with exclusive markers and the clean-up of interrupted writes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { forgetSnapshots } from '../src/engine/forget.ts';
import { PruneRun } from '../src/engine/prune/prune.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LockedError, WriterSession } from '../src/repo/writer-markers.ts';
import { LocalStore } from '../src/store/local.ts';
import type { Store } from '../src/store/store.ts';
import { tempDir } from './helpers/cli.ts';
import { allContent, backup, checkErrors, PASS, prune, withRepo } from './helpers/lifecycle.ts';
import { lateBackup } from './helpers/late-commit.ts';
import { seededBytes } from './helpers/tree.ts';

function source(dir: string, name: string, files: Record<string, number>, seed = name): string {
  const root = path.join(dir, name);
  fs.mkdirSync(root, { recursive: true });
  for (const [file, size] of Object.entries(files)) fs.writeFileSync(path.join(root, file), seededBytes(`${seed}/${file}`, size));
  return root;
}

async function forget(stores: Store[], ids: string[]): Promise<void> {
  await withRepo(stores, (repo) => forgetSnapshots(repo, { ids, groupBy: [] }));
}

function packCount(repoDir: string): number {
  const data = path.join(repoDir, 'data');
  return fs.existsSync(data) ? fs.readdirSync(data).reduce((n, d) => n + fs.readdirSync(path.join(data, d)).length, 0) : 0;
}

async function newRepo(dir: string): Promise<{ stores: Store[]; root: string }> {
  const root = path.join(dir, 'repo');
  const stores = [new LocalStore(root)];
  await initRepository(stores, PASS);
  return { stores, root };
}

test('unused packs are deleted, mostly unused ones repacked, the index compacted; what is kept restores', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { stores, root } = await newRepo(dir);
  // Small packs so that one snapshot's files share packs with another's.
  const a = source(dir, 'a', { one: 400_000, two: 400_000, three: 400_000 });
  const first = await backup(stores, [a], { packSize: 1 << 20 });
  fs.rmSync(path.join(a, 'two'));
  fs.rmSync(path.join(a, 'three'));
  fs.writeFileSync(path.join(a, 'four'), seededBytes('four', 300_000));
  const second = await backup(stores, [a], { packSize: 1 << 20 });
  const b = source(dir, 'b', { alone: 500_000 });
  const third = await backup(stores, [b], { packSize: 1 << 20 });
  const before = await allContent(stores);
  const packsBefore = packCount(root);

  await forget(stores, [first, third]);
  const dry = await prune(stores, { dryRun: true, maxUnused: { kind: 'percent', percent: 0 } });
  assert.ok(dry.deleted.packs > 0 && dry.repacked.packs > 0, JSON.stringify(dry));
  assert.equal(packCount(root), packsBefore, 'a dry run deletes nothing');

  const result = await prune(stores, { maxUnused: { kind: 'percent', percent: 0 } });
  assert.equal(result.waiting.packs, 0, 'alone: the space is freed in the same run');
  assert.ok(result.deleted.bytes > 1_000_000, `freed ${result.deleted.bytes}`);
  assert.ok(result.repacked.packs >= 1 && result.repacked.newPacks >= 1, JSON.stringify(result.repacked));
  assert.ok(result.unusedAfter < 2000, `unused after: ${result.unusedAfter}`);
  assert.deepEqual(await checkErrors(stores), []);
  const after = await allContent(stores);
  assert.deepEqual([...after.keys()], [second]);
  assert.deepEqual(after.get(second), before.get(second), 'the kept snapshot reads back identical');
  assert.equal(fs.readdirSync(path.join(root, 'index')).length, 1, 'the index is one compact file');
  assert.deepEqual(fs.readdirSync(path.join(root, 'writers')), [], 'no marker is left behind');

  // Nothing left to do: a second prune changes nothing.
  const again = await prune(stores, { maxUnused: { kind: 'percent', percent: 0 } });
  assert.deepEqual([again.deleted.packs, again.repacked.packs, again.records.written], [0, 0, 0]);
});

test('while another writer runs, prune only marks; the next prune after it ends frees the space', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { stores, root } = await newRepo(dir);
  const a = source(dir, 'a', { x: 600_000 });
  const old = await backup(stores, [a]);
  const b = source(dir, 'b', { y: 600_000 });
  const kept = await backup(stores, [b]);
  await forget(stores, [old]);

  const other = await withRepo(stores, (repo) => WriterSession.start(repo, { command: 'backup' }));
  const marked = await prune(stores);
  assert.equal(marked.deleted.packs, 0);
  assert.ok(marked.waiting.packs >= 1 && marked.waiting.bytes > 500_000, JSON.stringify(marked.waiting));
  assert.deepEqual(marked.waiting.writers.map((w) => [w.command, w.pid]), [['backup', process.pid]]);
  const packs = packCount(root);

  // Still running: a prune changes nothing; its own marker is exclusive, a second prune is refused.
  const holding = await withRepo(stores, (repo) => WriterSession.start(repo, { command: 'prune', exclusive: true }));
  await assert.rejects(prune(stores), (err) => err instanceof LockedError && /another prune is running .*pid \d+.*coffer unlock/.test(err.message));
  await holding.end();
  assert.equal((await prune(stores)).deleted.packs, 0);
  assert.equal(packCount(root), packs);

  await other.end();
  const freed = await prune(stores);
  assert.ok(freed.deleted.packs >= 1 && freed.waiting.packs === 0, JSON.stringify(freed));
  assert.ok(packCount(root) < packs);
  assert.deepEqual(await checkErrors(stores), []);
  assert.deepEqual([...(await allContent(stores)).keys()], [kept]);
});

test('a writer that started before the marking and reuses marked data rescues its pack', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { stores } = await newRepo(dir);
  const a = source(dir, 'a', { x: 700_000 });
  const old = await backup(stores, [a]);
  // A backup starts (marker written, index loaded: it knows x's blobs)…
  const late = await Repository.open(stores, PASS);
  const session = await WriterSession.start(late, { command: 'backup' });
  await late.loadIndex({ holdBack: session.records });
  // …then the snapshot that needed x is forgotten and a prune marks x's pack; the backup is still running.
  await forget(stores, [old]);
  const marked = await prune(stores);
  assert.ok(marked.waiting.packs >= 1);
  // The backup commits a snapshot that reuses x (it deduplicated against the index it had), and ends.
  const { BackupRun } = await import('../src/engine/backup/backup.ts');
  const result = await new BackupRun(late, { paths: [a], session, workers: 1 }).run();
  assert.equal(result.snapshot.summary.bytesAdded < 100_000, true, 'the data was deduplicated, not uploaded again');
  await session.end();
  // The next prune sees the new snapshot: the pack is rescued, nothing it needs is deleted.
  const completed = await prune(stores);
  assert.ok(completed.rescued.packs >= 1, JSON.stringify(completed));
  assert.deepEqual(await checkErrors(stores), []);
  // A rescued pack stays as it is: the next prune has nothing to rewrite or record.
  const still = await prune(stores);
  assert.deepEqual([still.deleted.packs, still.records.written, still.indexFiles.rewritten], [0, 0, 0], JSON.stringify(still));
  const content = await allContent(stores);
  assert.equal(content.size, 1);
  assert.ok([...content.values()][0]!.size === 1);
});

test('a backup that starts after the marking stores marked data again instead of reusing it', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { stores } = await newRepo(dir);
  const a = source(dir, 'a', { x: 700_000 });
  const old = await backup(stores, [a]);
  await forget(stores, [old]);
  const blocker = await withRepo(stores, (repo) => WriterSession.start(repo, { command: 'restore' }));
  const marked = await prune(stores);
  assert.ok(marked.waiting.packs >= 1);
  // This backup sees the record: x's blobs are held back, so it uploads them again.
  const again = await withRepo(stores, async (repo) => new (await import('../src/engine/backup/backup.ts')).BackupRun(repo, { paths: [a], workers: 1 }).run());
  assert.ok(again.snapshot.summary.bytesAdded > 600_000, `re-stored ${again.snapshot.summary.bytesAdded} bytes`);
  await blocker.end();
  const freed = await prune(stores);
  assert.ok(freed.deleted.packs >= 1 && freed.rescued.packs === 0, JSON.stringify(freed));
  assert.deepEqual(await checkErrors(stores), []);
  assert.equal((await allContent(stores)).size, 1);
});

test("a marker that expired (its writer stopped heartbeating) no longer holds the space; tmp files are cleaned once that old", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { stores, root } = await newRepo(dir);
  const a = source(dir, 'a', { x: 500_000 });
  const old = await backup(stores, [a]);
  await backup(stores, [source(dir, 'b', { y: 1000 })]);
  await forget(stores, [old]);
  // A writer on another machine: its marker is two hours and a minute old by the store's clock.
  const ghost = await withRepo(stores, (repo) => WriterSession.start(repo, { command: 'backup' }));
  const markerFile = path.join(root, 'writers', fs.readdirSync(path.join(root, 'writers'))[0]!);
  const longAgo = new Date(Date.now() - (2 * 60 + 1) * 60_000);
  fs.utimesSync(markerFile, longAgo, longAgo);
  const fresh = path.join(root, 'tmp', `${'a'.repeat(24)}.tmp`);
  const stale = path.join(root, 'tmp', `${'b'.repeat(24)}.tmp`);
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  fs.writeFileSync(fresh, 'being written');
  fs.writeFileSync(stale, 'left by a crash');
  fs.utimesSync(stale, longAgo, longAgo);
  // The ghost is this very process, so it is not "dead"; only the time says it is gone.
  const result = await withRepo(stores, (repo) => new PruneRun(repo, {}).run());
  assert.ok(result.deleted.packs >= 1 && result.waiting.packs === 0, JSON.stringify(result));
  assert.deepEqual(result.cleanedUp, { objects: 1, bytes: 'left by a crash'.length });
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), [path.basename(fresh)]);
  await ghost.end();
});

test('records of finished work are merged into one, so starting a process stays cheap', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { stores, root } = await newRepo(dir);
  const a = source(dir, 'a', { x: 1000 });
  const ids: string[] = [];
  const { BackupRun } = await import('../src/engine/backup/backup.ts');
  await withRepo(stores, async (repo) => {
    for (let i = 0; i < 9; i++) {
      fs.writeFileSync(path.join(a, 'x'), `version ${i}`);
      ids.push((await new BackupRun(repo, { paths: [a], workers: 1 }).run()).snapshotId);
    }
    for (const id of ids.slice(0, 8)) await forgetSnapshots(repo, { ids: [id], groupBy: [] });
  });
  assert.equal(fs.readdirSync(path.join(root, 'deletions')).length, 8);
  await prune(stores);
  const left = fs.readdirSync(path.join(root, 'deletions')).length;
  assert.ok(left <= 2, `${left} records left`);
  // The merged record still says what was forgotten: nobody lists those snapshots.
  assert.deepEqual([...(await allContent(stores)).keys()], [ids[8]]);
  assert.deepEqual(await checkErrors(stores), []);
});

// Regression: prune loaded the index, then listed the snapshots. A backup that committed in between (its
// index file, then its snapshot) gave a snapshot whose blobs no loaded index file listed, and the prune
// refused to run ("no index lists it": fresh-clone CI, test/crash.test.ts's prune beside a killed backup).
test('a backup that commits while prune loads the index does not make the prune refuse', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const { root } = await newRepo(dir);
  await backup([new LocalStore(root)], [source(dir, 'a', { one: 300_000 })]);
  const late = await lateBackup(root, source(dir, 'b', { two: 300_000 }));
  await prune([late.store], { onStage: (p) => (late.armed = p.stage === 'loading index') });
  assert.ok(late.committed, 'the other backup committed during the prune');
  assert.deepEqual(await checkErrors([new LocalStore(root)]), []);
  assert.ok((await allContent([new LocalStore(root)])).has(late.snapshotId), 'the late snapshot is there and reads back');
});
