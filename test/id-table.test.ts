// The compact blob index: exact lookups across page boundaries and growth, a bounded footprint, and
// membership queries from another thread while the owner keeps adding.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { BlobType } from '../src/format/pack.ts';
import { BlobIndex } from '../src/repo/blob-index.ts';
import { IdTable, PAGE_ENTRIES, type IdSetShare } from '../src/repo/id-table.ts';

test('ids are found with their records after many pages and rehashes, absent ids are not', () => {
  const table = new IdTable(2);
  const ids = Array.from({ length: PAGE_ENTRIES * 2 + 17 }, () => crypto.randomBytes(32));
  ids.forEach((id, i) => assert.equal(table.add(id, [i, i * 3]), i));
  assert.equal(table.add(ids[5]!, [0, 0]), -1, 'adding twice keeps the first record');
  for (const [i, id] of ids.entries()) {
    const n = table.find(id);
    assert.equal(n, i);
    assert.deepEqual([table.word(n, 0), table.word(n, 1)], [i, i * 3]);
  }
  for (let i = 0; i < 1000; i++) assert.equal(table.find(crypto.randomBytes(32)), -1);
  // Same first four bytes (same hash slot), different ids: still told apart.
  const twin = Buffer.from(ids[0]!);
  twin[31]! ^= 1;
  assert.equal(table.find(twin), -1);
});

test('the blob index stays under 64 bytes per blob and returns full locations', () => {
  const index = new BlobIndex();
  const count = 1_000_000;
  const salt = crypto.randomBytes(32);
  const packId = crypto.randomBytes(32);
  const random = crypto.randomBytes(count * 32);
  const entries = Array.from({ length: count }, (_, i) => ({ type: i % 2 ? BlobType.Tree : BlobType.Data, id: random.subarray(i * 32, i * 32 + 32), offset: i * 10, length: 10, rawLength: i }));
  index.addPack({ id: packId, salt, entries });
  assert.ok(index.memoryBytes() / count < 64, `${(index.memoryBytes() / count).toFixed(1)} bytes per blob`);
  const loc = index.lookup(entries[12345]!.id)!;
  // packExtent: where the pack's last indexed blob ends (blob 999,999 at 9,999,990 + 10), how much a tree-pack read takes.
  assert.deepEqual(loc, { type: BlobType.Tree, packId: packId.toString('hex'), salt, offset: 123450, length: 10, rawLength: 12345, packExtent: 10_000_000 });
});

test('a worker thread sees ids the owner added after the worker started', async (t) => {
  const table = new IdTable(1);
  let share = table.share();
  table.onShareChanged = () => (share = table.share());
  const early = crypto.randomBytes(32);
  table.add(early, [1]);
  const worker = new Worker(new URL('./helpers/id-set-worker.ts', import.meta.url), { workerData: share });
  t.after(() => worker.terminate());
  const ask = (ids: Uint8Array[], update?: IdSetShare): Promise<boolean[]> =>
    new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage({ ids, ...(update ? { share: update } : {}) });
    });
  const late = Array.from({ length: PAGE_ENTRIES + 10 }, () => crypto.randomBytes(32));
  assert.deepEqual(await ask([early, late[0]!]), [true, false]);
  for (const id of late) table.add(id, [2]);
  // Before hearing of the new pages and slot table, the worker may miss ids but never invents one.
  assert.equal((await ask([crypto.randomBytes(32)]))[0], false);
  const answers = await ask(late, share);
  assert.ok(answers.every(Boolean), 'after the update every id is found');
});
