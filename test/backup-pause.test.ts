// Pause and cancel reach into a running backup: with the gate closed, uploads in flight and the pack in
// hand finish and nothing new starts; opening it carries on to a complete snapshot; aborting while
// paused stops at once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { InterruptedError } from '../src/engine/interrupted.ts';
import { PauseGate } from '../src/engine/pause-gate.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { tempDir } from './helpers/cli.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { seededBytes } from './helpers/tree.ts';

const PASS = 'pause test';

class CountingStore extends MemoryStore {
  puts = 0;
  override async put(name: string, data: Uint8Array): Promise<boolean> {
    this.puts++;
    // Slow enough that the run is still uploading when the test pauses it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    return super.put(name, data);
  }
}

async function setup(t: import('node:test').TestContext) {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`f${i}`, 1 << 20));
  const store = new CountingStore();
  await initRepository([store], PASS);
  const repo = await Repository.open([store], PASS);
  await repo.loadIndex();
  t.after(() => repo.close());
  return { source, store, repo };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5);
}

test('paused: work in hand finishes, then nothing moves until resumed; the snapshot is complete', async (t) => {
  const { source, store, repo } = await setup(t);
  const gate = new PauseGate();
  const run = new BackupRun(repo, { paths: [source], packSize: 1 << 20, workers: 2, pause: gate });
  const result = run.run();
  const before = store.puts;
  await until(() => store.puts >= before + 3);
  gate.pause();
  await sleep(400);
  const settled = { puts: store.puts, read: run.progress().bytesDone };
  await sleep(800);
  assert.equal(store.puts, settled.puts, 'no upload starts while paused');
  assert.equal(run.progress().bytesDone, settled.read, 'no file is read while paused');
  assert.ok(settled.read < 24 << 20, 'it was paused in the middle');
  gate.resume();
  const done = await result;
  assert.equal(done.snapshot.summary.totalFiles, 24);
  assert.equal(done.destinations[0]!.committed, true);
});

test('aborted while paused: the run stops at once with InterruptedError', async (t) => {
  const { source, store, repo } = await setup(t);
  const gate = new PauseGate();
  const abort = new AbortController();
  const run = new BackupRun(repo, { paths: [source], packSize: 1 << 20, workers: 2, pause: gate, signal: abort.signal });
  const result = run.run();
  const before = store.puts;
  await until(() => store.puts >= before + 2);
  gate.pause();
  await sleep(200);
  const started = performance.now();
  abort.abort();
  await assert.rejects(result, InterruptedError);
  assert.ok(performance.now() - started < 3000, 'it does not wait for the gate to open');
  assert.equal([...store.objects.keys()].filter((k) => k.startsWith('snapshots/')).length, 0);
});

test("aborted while a stream's producer is silent: the producer is told to stop and the run stops with InterruptedError", async (t) => {
  const { store, repo } = await setup(t);
  const abort = new AbortController();
  let told = false;
  const stream = {
    name: 'dump.sql',
    async *open(stop: AbortSignal) {
      yield seededBytes('head', 1 << 16);
      // A dump that prints nothing for a while: only the signal can end it.
      await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }));
      told = true;
    },
  };
  const run = new BackupRun(repo, { paths: [], streams: [stream], workers: 1, signal: abort.signal });
  const result = run.run();
  await until(() => run.progress().bytesDone > 0);
  abort.abort();
  await assert.rejects(result, InterruptedError);
  assert.ok(told, 'the producer saw the stop');
  assert.equal([...store.objects.keys()].filter((k) => k.startsWith('snapshots/')).length, 0);
});
