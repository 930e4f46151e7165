// Progress totals of a backup: a first backup counts its sources on a thread of its own; a backup with a
// parent snapshot takes the parent's totals instead (no second walk, no isolate), keeps them honest when
// the walk passes them, and ends with what it read.
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { statusText } from '../src/cli/commands/backup.ts';
import { BackupRun, type BackupResult } from '../src/engine/backup/backup.ts';
import { ProgressCounters, type BackupProgress } from '../src/engine/backup/progress.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { tempDir } from './helpers/cli.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { seededBytes } from './helpers/tree.ts';

const PASS = 'totals test';

async function setup(t: TestContext) {
  const source = path.join(tempDir(t), 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`f${i}`, 1000 + i));
  const store = new MemoryStore();
  await initRepository([store], PASS);
  const repo = await Repository.open([store], PASS);
  await repo.loadIndex();
  t.after(() => repo.close());
  return { source, repo };
}

/** Runs one backup with a single chunk worker; how many threads it started and the progress seen at each file. */
async function backup(repo: Repository, source: string): Promise<{ result: BackupResult; threads: number; seen: BackupProgress[]; end: BackupProgress }> {
  let threads = 0;
  const started = () => threads++;
  diagnostics.subscribe('worker_threads', started);
  try {
    const run = new BackupRun(repo, { paths: [source], workers: 1 });
    const seen: BackupProgress[] = [];
    run.onFile = () => seen.push(run.progress());
    const result = await run.run();
    return { result, threads, seen, end: run.progress() };
  } finally {
    diagnostics.unsubscribe('worker_threads', started);
  }
}

function assertHonest(seen: readonly BackupProgress[]): void {
  for (const p of seen) {
    assert.ok(p.filesDone <= p.filesTotal && p.bytesDone <= p.bytesTotal, `done within the totals: ${JSON.stringify(p)}`);
    assert.ok(p.etaSeconds === undefined || p.etaSeconds >= 0, 'no ETA below zero');
  }
}

test('a first backup counts its sources on a thread of its own; one with a parent does not, and starts from its totals', async (t) => {
  const { source, repo } = await setup(t);
  const first = await backup(repo, source);
  assert.equal(first.threads, 2, 'a chunk worker and the counter');
  assert.ok(first.seen.every((p) => p.totalsEstimated === undefined));
  assert.equal(first.end.totalsKnown, true);
  const parent = first.result.snapshot.summary;

  const again = await backup(repo, source);
  assert.equal(again.threads, 0, 'no counting pass with a parent, and no chunk worker: nothing to read');
  assert.equal(again.result.snapshot.summary.filesUnmodified, 40);
  assert.deepEqual(
    { files: again.seen[0]!.filesTotal, bytes: again.seen[0]!.bytesTotal, known: again.seen[0]!.totalsKnown, estimated: again.seen[0]!.totalsEstimated },
    { files: parent.totalFiles, bytes: parent.totalBytes, known: true, estimated: true },
  );
  assertHonest(again.seen);
  assert.match(statusText(again.seen[0]!), / \d+\/~40 files [\d.]+ \S+\/~[\d.]+ \S+ /, 'the status line says the totals are estimated');
  assert.deepEqual({ files: again.end.filesTotal, bytes: again.end.bytesTotal, known: again.end.totalsKnown }, { files: 40, bytes: parent.totalBytes, known: true });
  assert.equal(again.end.totalsEstimated, undefined, 'once everything is read the totals are what was read');
});

// Regression (fresh-clone CI, 2026-12-02): on a loaded machine a first backup of 40 small files ended
// before its counter thread had reported, and its last progress said the totals were still unknown.
test('a backup whose walk ends before its counter does ends with what it read as its totals, and a late count changes nothing', () => {
  const counters = new ProgressCounters();
  counters.counted(10, 1000, false);
  counters.filesDone = 12;
  counters.bytesDone = 1500;
  counters.walkEnded();
  counters.counted(11, 1100, true);
  const end = counters.snapshot([]);
  assert.deepEqual({ files: end.filesTotal, bytes: end.bytesTotal, known: end.totalsKnown }, { files: 12, bytes: 1500, known: true });
});

test('an incremental backup that finds more than its parent grows the totals with what it found', async (t) => {
  const { source, repo } = await setup(t);
  const parent = (await backup(repo, source)).result.snapshot.summary;
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(source, `g${i}`), seededBytes(`g${i}`, 5000));
  fs.rmSync(path.join(source, 'f0'));

  const more = await backup(repo, source);
  assert.equal(more.threads, 1, 'no counting pass with a parent');
  assert.equal(more.seen[0]!.filesTotal, parent.totalFiles, 'the parent totals first');
  assertHonest(more.seen);
  const past = more.seen.filter((p) => p.filesDone > parent.totalFiles);
  assert.ok(past.length > 0, 'the walk passed the parent totals');
  for (const p of past) {
    assert.equal(p.filesTotal, p.filesDone, 'the total grows with what the walk found');
    assert.equal(p.totalsEstimated, true);
    assert.equal(p.totalsKnown, false, 'shown as still growing');
    assert.equal(p.etaSeconds, undefined, 'no ETA past the estimate');
    assert.match(statusText(p), new RegExp(` ${p.filesDone}/~${p.filesDone}\\+ files `));
  }
  const summary = more.result.snapshot.summary;
  assert.deepEqual({ files: more.end.filesTotal, bytes: more.end.bytesTotal, known: more.end.totalsKnown }, { files: summary.totalFiles, bytes: summary.totalBytes, known: true });
});
