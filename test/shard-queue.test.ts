// The in-process shard queue: claims by capacity, heartbeats, a silent worker's shard handed to another
// after the timeout, retries, and the status the dashboard shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ShardJson } from '../src/engine/scale-out/shard-plan.ts';
import { shardStatusLines } from '../src/cli/shard-status.ts';
import { MemoryShardQueue } from '../src/scale-out/shard-queue.ts';

const shard = (i: number): ShardJson => ({ paths: ['/data'], split: [], parts: [{ source: '/data' }], files: 10 * i, bytes: 1000 * i });
const summary = { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, totalFiles: 0, totalBytes: 0, dataBlobs: 0, treeBlobs: 0, bytesAdded: 0, warnings: 0, durationMs: 0 };
const tree = (c: string) => c.repeat(64);

test('claims by capacity; a silent worker loses its shard to another after the timeout; the outcomes come in shard order', async () => {
  let now = 0;
  const queue = new MemoryShardQueue({ heartbeatTimeoutMs: 30_000, now: () => now });
  const { run, outcomes } = queue.enqueue([shard(1), shard(2), shard(3)], 'ab'.repeat(32));
  const a = queue.claim('a', 2);
  assert.deepEqual(a.map((c) => [c.index, c.attempt, c.parent]), [[0, 1, 'ab'.repeat(32)], [1, 1, 'ab'.repeat(32)]]);
  const b = queue.claim('b', 1);
  assert.deepEqual(b.map((c) => c.index), [2]);
  assert.deepEqual(queue.claim('c', 4), [], 'nothing waits');

  assert.ok(queue.heartbeat(a[0]!.claim, { filesDone: 5, bytesDone: 500 }));
  let status = queue.status(run);
  assert.deepEqual(status.running.map((r) => [r.index, r.worker, r.progress.bytesDone, r.bytes]), [[0, 'a', 500, 1000], [1, 'a', 0, 2000], [2, 'b', 0, 3000]]);

  now = 25_000;
  assert.ok(queue.heartbeat(b[0]!.claim));
  assert.ok(queue.heartbeat(a[1]!.claim));
  now = 30_001;
  // a's first shard has been silent for 30 s and a millisecond: it waits for another worker.
  const c = queue.claim('c', 4);
  assert.deepEqual(c.map((x) => [x.index, x.attempt]), [[0, 2]]);
  assert.equal(queue.heartbeat(a[0]!.claim), false, 'the lost claim is refused');
  assert.equal(queue.finish(a[0]!.claim, { ok: true, tree: tree('1'), summary }), false, 'and so is its late result');

  assert.ok(queue.finish(c[0]!.claim, { ok: true, tree: tree('a'), summary }));
  assert.ok(queue.finish(a[1]!.claim, { ok: true, tree: tree('b'), summary }));
  status = queue.status(run);
  assert.deepEqual([status.waiting.length, status.running.length, status.done], [0, 1, 2]);
  assert.ok(queue.finish(b[0]!.claim, { ok: true, tree: tree('c'), summary }));
  assert.deepEqual((await outcomes).map((o) => (o.ok ? o.tree[0] : o.error)), ['a', 'b', 'c']);
});

test('a shard that fails on every attempt fails for good with the last error; the waiting queue shows sizes', async () => {
  let now = 0;
  const queue = new MemoryShardQueue({ heartbeatTimeoutMs: 1000, maxAttempts: 2, now: () => now });
  const { run, outcomes } = queue.enqueue([shard(1), shard(2)]);
  const first = queue.claim('a', 1);
  assert.deepEqual(queue.status(run).waiting, [{ index: 1, files: 20, bytes: 2000, attempt: 0 }]);
  queue.finish(first[0]!.claim, { ok: false, error: 'disk full' });
  const again = queue.claim('b', 1);
  assert.deepEqual(again.map((c) => [c.index, c.attempt]), [[0, 2]]);
  now = 5000;
  queue.reap();
  const other = queue.claim('b', 1);
  assert.deepEqual(other.map((c) => c.index), [1]);
  queue.finish(other[0]!.claim, { ok: true, tree: tree('d'), summary });
  const [zero, one] = await outcomes;
  assert.deepEqual(zero, { ok: false, error: 'failed 2 times; last: worker b stopped heartbeating (silent for 5 s)' });
  assert.equal(one!.ok, true);
  queue.stop();
});

test("the CLI's live view: each worker with its shard and progress, the waiting shards with their size", () => {
  let now = 0;
  const queue = new MemoryShardQueue({ heartbeatTimeoutMs: 30_000, now: () => now });
  const { run } = queue.enqueue([shard(1024), shard(2048), shard(4096), shard(1024)]);
  const [first] = queue.claim('local-1', 1);
  queue.claim('local-2', 1);
  queue.heartbeat(first!.claim, { filesDone: 3, bytesDone: 512 * 1000 });
  now = 12_000;
  queue.heartbeat(first!.claim);
  assert.deepEqual(shardStatusLines(queue.status(run)), [
    'shards: 0 of 4 done, 2 running, 2 waiting (4.88 MiB)',
    '  local-1: shard 1, 500 KiB of 1000 KiB read',
    '  local-2: shard 2, 0 B of 1.95 MiB read, silent for 12 s',
  ]);
  queue.stop();
});
