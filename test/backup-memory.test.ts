// What a streamed backup holds in memory: nothing per block written. Each block of a stream (a database
// dump, stdin) waits on the chunk workers, and that wait must leave nothing behind on the promise that
// stops the run: a 100 GB dump is 1.6 million writes of 64 KiB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { MemoryStore } from './helpers/memory-store.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const PASS = 'memory test';

function livePromises(): number {
  gc();
  return v8.queryObjects(Promise, { format: 'count' }) as number;
}

test('a streamed backup keeps nothing alive per block written', async (t) => {
  const store = new MemoryStore();
  await initRepository([store], PASS);
  const repo = await Repository.open([store], PASS);
  await repo.loadIndex();
  t.after(() => repo.close());

  const blocks = 4000;
  const block = 1024;
  const live: number[] = [];
  const stream = {
    name: 'dump.sql',
    async *open() {
      for (let i = 0; i < blocks; i++) {
        // Counted while the run (and whatever it retains) is alive: after a first quarter, and at the end.
        if (i === blocks / 4 || i === blocks - 1) {
          await new Promise((resolve) => setImmediate(resolve));
          live.push(livePromises());
        }
        yield new Uint8Array(block).fill(i % 251);
      }
    },
  };
  const run = new BackupRun(repo, { paths: [], streams: [stream], workers: 1 });
  const result = await run.run();
  assert.equal(result.snapshot.paths.length, 1);
  const [early, late] = live as [number, number];
  const grown = late - early;
  assert.ok(grown < blocks / 10, `${grown} more promises alive after ${(blocks * 3) / 4} more blocks (${early} -> ${late})`);
});
