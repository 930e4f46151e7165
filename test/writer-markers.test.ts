// Writer markers (repo/writer-markers.ts, FORMAT.md 12.1): heartbeats, ages measured on the storage's
// clock whatever the hosts' clocks say, the fence of a writer that was paused, exclusive markers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sealDeletionRecord } from '../src/repo/deletion-records.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { FencedError, LockedError, WriterSession, type MarkerTiming } from '../src/repo/writer-markers.ts';
import { MemoryStore } from './helpers/memory-store.ts';

const PASS = 'markers';
const HOUR = 3600_000;
/** Real heartbeats never fire in these tests: time moves only when the test moves the store's clock. */
const timing: MarkerTiming = { heartbeatMs: HOUR, fenceMs: 30 * 60_000, expiryMs: 2 * HOUR };

/** A store whose clock is `offset` ms off the hosts' (and can be moved on). */
async function skewedRepo(offset: number): Promise<{ store: MemoryStore; open: () => Promise<Repository>; advance: (ms: number) => void }> {
  let skew = offset;
  const store = new MemoryStore();
  store.now = () => Date.now() + skew;
  await initRepository([store], PASS);
  return { store, open: () => Repository.open([store], PASS), advance: (ms) => (skew += ms) };
}

function markers(store: MemoryStore): string[] {
  return [...store.objects.keys()].filter((n) => n.startsWith('writers/'));
}

test("ages are read on the storage's clock: hours of skew change nothing, silence longer than the expiry does", async () => {
  // The store's clock is five hours ahead of every host's.
  const { store, open, advance } = await skewedRepo(5 * HOUR);
  const backup = await WriterSession.start(await open(), { command: 'backup', timing });
  const observer = await WriterSession.start(await open(), { command: 'prune', timing });
  let [seen] = await observer.others();
  assert.equal(seen!.liveness, 'live', 'a marker written a moment ago is live, whatever the skew');
  assert.equal(seen!.marker.command, 'backup');
  // The backup stops heartbeating (suspended); two hours and a bit pass on the store.
  advance(2 * HOUR + 60_000);
  await observer.heartbeat();
  [seen] = await observer.others();
  assert.equal(seen!.liveness, 'expired');
  // It heartbeats again: live again.
  await backup.heartbeat();
  [seen] = await observer.others();
  assert.equal(seen!.liveness, 'live');
  await backup.end();
  await observer.end();
  assert.deepEqual(markers(store), []);
});

test('a heartbeat replaces the marker with a new object; end removes it', async () => {
  const { store, open } = await skewedRepo(0);
  const session = await WriterSession.start(await open(), { command: 'backup', timing });
  const first = markers(store);
  assert.equal(first.length, 1);
  await session.heartbeat();
  const second = markers(store);
  assert.equal(second.length, 1);
  assert.notEqual(second[0], first[0], 'write-once: a new version is a new object');
  await session.end();
  assert.deepEqual(markers(store), []);
});

test("a store that refuses deletes (a write-only agent's) keeps the heartbeat going; the old version counts as the same writer", async () => {
  const { store, open } = await skewedRepo(0);
  store.delete = async (name: string) => {
    throw new Error(`this agent is write-only; cannot delete ${name}`);
  };
  const errors: Error[] = [];
  const session = await WriterSession.start(await open(), { command: 'backup', timing, onHeartbeatError: (_store, err) => errors.push(err) });
  await session.heartbeat();
  assert.deepEqual(errors, []);
  assert.equal(markers(store).length, 2, 'the previous version stays behind');
  const observer = await WriterSession.start(await open(), { command: 'prune', timing });
  const others = await observer.others();
  assert.equal(others.length, 1, 'one writer, two versions');
  assert.equal(others[0]!.names.length, 2);
  assert.equal(others[0]!.liveness, 'live');
  await session.end();
  await observer.end();
});

test('a writer paused longer than the fence does not commit if a record that dooms packs appeared meanwhile', async () => {
  const { store, open, advance } = await skewedRepo(0);
  const paused = await WriterSession.start(await open(), { command: 'backup', timing });
  const steady = await WriterSession.start(await open(), { command: 'backup', timing });
  // A prune writes a record naming packs while the first writer sleeps for 40 minutes.
  const repo = await open();
  for (let minutes = 0; minutes < 40; minutes += 10) {
    advance(10 * 60_000);
    await steady.heartbeat();
  }
  const record = sealDeletionRecord(repo, { timeMs: Date.now(), host: 'h', snapshots: [], packs: [Buffer.alloc(32, 7)], indexes: [], writers: [] });
  await store.put(record.name, record.bytes);
  await assert.rejects(paused.fence(store), (err) => err instanceof FencedError && /paused for 30 minutes or more while a prune marked data for deletion/.test(err.message));
  // The one that heartbeat all along was named by the prune (or saw the record): it may commit.
  await steady.fence(store);
  await paused.end();
  await steady.end();
});

test('a paused writer commits when nothing was marked meanwhile (a forget alone dooms no pack)', async () => {
  const { store, open, advance } = await skewedRepo(0);
  const paused = await WriterSession.start(await open(), { command: 'backup', timing });
  const repo = await open();
  advance(3 * HOUR);
  const forget = sealDeletionRecord(repo, { timeMs: Date.now(), host: 'h', snapshots: [Buffer.alloc(32, 1)], packs: [], indexes: [], writers: [] });
  await store.put(forget.name, forget.bytes);
  await paused.fence(store);
  await paused.end();
});

test('one live exclusive marker at a time; an expired one does not block', async () => {
  const { open, advance } = await skewedRepo(0);
  const first = await WriterSession.start(await open(), { command: 'prune', exclusive: true, timing });
  await assert.rejects(WriterSession.start(await open(), { command: 'prune', exclusive: true, timing }), (err) => err instanceof LockedError && /another prune is running/.test(err.message));
  // Backups and readers never wait for it.
  const backup = await WriterSession.start(await open(), { command: 'backup', timing });
  await backup.end();
  advance(2 * HOUR + 1000);
  const second = await WriterSession.start(await open(), { command: 'prune', exclusive: true, timing });
  await second.end();
  await first.end();
});
