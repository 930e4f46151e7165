// The walk details a dashboard shows: the 15 most recent files, the last completed directory with its
// duration and size, and the next directory waiting in the walk with its size from the counter.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Repository, initRepository } from '../src/repo/repository.ts';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { RECENT_FILES, WalkProgress } from '../src/engine/backup/walk-progress.ts';
import type { SourceEntry } from '../src/engine/backup/source-walk.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { tempDir } from './helpers/cli.ts';

function entry(p: string, dir: boolean): SourceEntry {
  return { name: Buffer.from(path.basename(p)), path: Buffer.from(p), stat: { isDirectory: () => dir } as fs.BigIntStats };
}

test('recent files are the last 15, newest first; the next directory is looked up innermost first, with its counted size', () => {
  let now = 1000;
  const walk = new WalkProgress(() => now);
  for (let i = 0; i < 40; i++) walk.fileDone(Buffer.from(`/src/f${i}`));
  const recent = walk.details().recentFiles;
  assert.equal(recent.length, RECENT_FILES);
  assert.deepEqual(recent.slice(0, 2), ['/src/f39', '/src/f38']);
  const top = walk.enter([entry('/src/a', true), entry('/src/x.txt', false), entry('/src/b', true)]);
  const inner = walk.enter([entry('/src/a/1.txt', false), entry('/src/a/2.txt', false)]);
  walk.addSizes([{ path: '/src/b', bytes: 123, files: 4 }]);
  assert.deepEqual(walk.details().nextDirectory, { path: '/src/b', bytes: 123, files: 4 });
  const parent = walk.startDirectory();
  const tally = walk.startDirectory();
  tally.bytes = 500;
  tally.files = 2;
  now = 1250;
  walk.leave(inner);
  walk.directoryDone(Buffer.from('/src/a'), tally, parent);
  assert.deepEqual(walk.details().lastDirectory, { path: '/src/a', durationMs: 250, bytes: 500, files: 2 });
  assert.deepEqual([parent.bytes, parent.files], [500, 2], 'a directory counts in its parent');
  top.index = 2;
  assert.equal(walk.details().nextDirectory, undefined, 'nothing after the last entry');
});

test("a backup's progress carries recent files and the last completed directory", async (t) => {
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  for (const d of ['a', 'b/c']) fs.mkdirSync(path.join(src, d), { recursive: true });
  fs.writeFileSync(path.join(src, 'a/one.txt'), 'x'.repeat(1000));
  fs.writeFileSync(path.join(src, 'b/c/two.txt'), 'y'.repeat(2000));
  fs.writeFileSync(path.join(src, 'b/three.txt'), 'z');
  const store = new MemoryStore();
  await initRepository([store], 'pw');
  const repo = await Repository.open([store], 'pw');
  await repo.loadIndex();
  const run = new BackupRun(repo, { paths: [src], workers: 1 });
  await run.run();
  const p = run.progress();
  assert.deepEqual([...p.recentFiles].sort(), [path.join(src, 'a/one.txt'), path.join(src, 'b/c/two.txt'), path.join(src, 'b/three.txt')].sort());
  assert.ok(p.lastDirectory);
  assert.ok([path.join(src, 'a'), path.join(src, 'b'), src].includes(p.lastDirectory.path), p.lastDirectory.path);
  if (p.lastDirectory.path === path.join(src, 'b')) assert.deepEqual([p.lastDirectory.bytes, p.lastDirectory.files], [2001, 2]);
  await repo.close();
});
