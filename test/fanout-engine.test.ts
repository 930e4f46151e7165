// The fan-out engine with stores that misbehave on purpose (FaultStore): a destination that goes
// offline mid-run, one too slow for the spool, retries of transient errors and none of permanent ones,
// priorities, adaptive concurrency and aging in the upload queue.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { ChunkPool, type SealedDataPack } from '../src/engine/backup/chunk-pool.ts';
import { ConcurrencyTuner } from '../src/engine/concurrency-tuner.ts';
import { PackSink } from '../src/engine/backup/pack-sink.ts';
import { Destination, type PutOutcome } from '../src/engine/destination.ts';
import { PackSpool } from '../src/engine/spool.ts';
import { SyncRun } from '../src/engine/sync.ts';
import { DEFAULT_ZSTD_LEVEL } from '../src/format/compression.ts';
import { contentIds } from '../src/format/tree.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { FaultStore } from '../src/store/fault.ts';
import { LocalStore } from '../src/store/local.ts';
import { RetryStore } from '../src/store/retry.ts';
import type { ObjectSource, PutOptions, Store } from '../src/store/store.ts';
import { walkTree } from '../src/engine/tree-walk.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { objectName } from './helpers/names.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { openFilesUnder } from './helpers/open-files.ts';
import { seededBytes } from './helpers/tree.ts';

const PASS = 'engine test';

async function openRepo(stores: Store[]): Promise<Repository> {
  await initRepository(stores, PASS);
  const repo = await Repository.open(stores, PASS);
  await repo.loadIndex();
  return repo;
}

function makeSource(dir: string, files: Record<string, number>): string {
  const source = path.join(dir, 'source');
  for (const [name, size] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(source, name)), { recursive: true });
    fs.writeFileSync(path.join(source, name), seededBytes(name, size));
  }
  return source;
}

/** Records the order in which objects reach a store. */
class RecordingStore extends MemoryStore {
  readonly order: string[] = [];
  override async put(name: string, data: Uint8Array): Promise<boolean> {
    this.order.push(name);
    return super.put(name, data);
  }
}

test('a destination that goes offline mid-run is detached, the other commits, and sync repairs it', async (t) => {
  const dir = tempDir(t);
  const source = makeSource(dir, Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, 3 << 20])));
  const healthy = new LocalStore(path.join(dir, 'healthy'));
  const flaky = new FaultStore(new LocalStore(path.join(dir, 'flaky')));
  const repo = await openRepo([healthy, flaky]);
  let wentOffline = false;
  const run = new BackupRun(repo, { paths: [source], packSize: 2 << 20, sink: { checkpointBytes: 4 << 20, checkpointMs: 60_000, backlogLimit: 8 << 20 } });
  const watcher = setInterval(() => {
    const flakyStatus = run.progress().destinations.find((d) => d.location === flaky.location)!;
    if (!wentOffline && flakyStatus.objectsDone >= 2) {
      flaky.goOffline();
      wentOffline = true;
    }
  }, 2);
  const result = await run.run();
  clearInterval(watcher);
  assert.ok(wentOffline);
  const byLocation = new Map(result.destinations.map((d) => [d.location, d]));
  assert.equal(byLocation.get(healthy.location)!.committed, true);
  assert.equal(byLocation.get(flaky.location)!.committed, false);
  assert.match(byLocation.get(flaky.location)!.error!, /offline|transient|connection/i);
  assert.equal((await healthy.stat(`snapshots/${result.snapshotId}`)) !== undefined, true);
  assert.equal(await new LocalStore(path.join(dir, 'flaky')).stat(`snapshots/${result.snapshotId}`), undefined, 'no snapshot where its packs are missing');

  flaky.goOnline();
  const [synced] = await new SyncRun(healthy, [flaky]).run();
  assert.equal(synced!.error, undefined);
  const again = await Repository.open([flaky], PASS);
  await again.loadIndex();
  const snapshots = await again.listSnapshots();
  assert.equal(snapshots.length, 1);
  for await (const { node } of walkTree(again, Buffer.from(snapshots[0]!.snapshot.tree, 'hex'))) {
    for (const id of contentIds(node)) await again.readBlob(id);
  }
});

/** Counts a store's writes under way, and those that landed. */
function watchWrites(store: Store): { store: Store; inFlight: () => number; landed: () => number } {
  let inFlight = 0;
  let landed = 0;
  const put = store.put.bind(store);
  store.put = async (...args) => {
    inFlight++;
    try {
      const stored = await put(...args);
      landed++;
      return stored;
    } finally {
      inFlight--;
    }
  };
  return { store, inFlight: () => inFlight, landed: () => landed };
}

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

// Regression (issue 13): the detached destination's uploads in flight ran on at 32 KiB/s after the run
// had settled, keeping the test process alive for about 97 s.
test('a destination too slow for the spool is detached, its uploads stop; the fast one is never held back', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const source = makeSource(dir, Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}`, 2 << 20])));
  const fast = new LocalStore(path.join(dir, 'fast'));
  // So slow that however slowly a loaded machine packs, the 6 MiB spool fills long before it drains.
  const crawl = watchWrites(new FaultStore(new LocalStore(path.join(dir, 'crawl')), { bandwidth: 32 * 1024 }));
  const repo = await openRepo([fast, crawl.store]);
  const timersBefore = timers();
  const started = Date.now();
  const run = new BackupRun(repo, {
    paths: [source],
    packSize: 1 << 20,
    spool: { memory: 2 << 20, disk: 6 << 20 },
    spoolDir: dir,
  });
  const result = await run.run();
  const byLocation = new Map(result.destinations.map((d) => [d.location, d]));
  assert.equal(byLocation.get(fast.location)!.committed, true);
  assert.match(byLocation.get(crawl.store.location)!.error!, /fell too far behind .*spool/);
  assert.ok(Date.now() - started < 60_000, 'the run did not wait for 20 MiB at 32 KiB/s');
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('coffer-spool-')), [], 'the spool is removed');
  // Its uploads in flight are stopped, not left to crawl on (a 1 MiB pack takes 32 s at this rate).
  const landed = crawl.landed();
  const deadline = Date.now() + 10_000;
  while (crawl.inFlight() > 0) {
    assert.ok(Date.now() < deadline, `${crawl.inFlight()} uploads to the detached destination still under way 10 s after the run`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(crawl.landed(), landed, 'nothing more landed on the detached destination');
  assert.ok(timers() <= timersBefore, `the run left ${timers() - timersBefore} timers behind`);
});

/** A store whose puts wait from hold() until open(). */
class GatedStore extends MemoryStore {
  private opened = true;
  private readonly waiting: (() => void)[] = [];
  hold(): void {
    this.opened = false;
  }
  open(): void {
    this.opened = true;
    for (const go of this.waiting.splice(0)) go();
  }
  override async put(name: string, data: Uint8Array): Promise<boolean> {
    if (!this.opened) await new Promise<void>((go) => this.waiting.push(go));
    return super.put(name, data);
  }
}

// Regression (CI of 2026-12-02): on a loaded machine the fast destination's first writes stalled until
// every pack had been added; at each add both backlogs were equal, so no one was detached, and the run
// then waited for the slow one to upload everything.
test('a full spool detaches the destination furthest behind as soon as another one stores, even if every pack was added while both stalled', async (t) => {
  const dir = tempDir(t);
  const fast = new GatedStore('memory:fast');
  const crawl = new GatedStore('memory:crawl');
  await initRepository([fast, crawl], PASS);
  const repo = await Repository.open([fast, crawl], PASS);
  fast.hold();
  crawl.hold();
  const fastDestination = new Destination(fast);
  const crawlDestination = new Destination(crawl);
  const spool = new PackSpool(dir, { memory: 1 << 20, disk: 2 << 20 });
  t.after(() => spool.close());
  const sink = new PackSink(repo, [fastDestination, crawlDestination], spool);
  for (let i = 0; i < 6; i++) sink.add({ id: seededBytes(`pack ${i}`, 32).toString('hex'), salt: Buffer.alloc(16), bytes: seededBytes(`bytes ${i}`, 1 << 20), entries: [] });
  assert.equal(spool.onDisk, 0, 'nothing goes to disk while no destination has stored anything');
  assert.equal(crawlDestination.detached, undefined, 'while both are equally behind, no one is picked');
  fast.open();
  await fastDestination.idle();
  assert.match(crawlDestination.status().error ?? '', /fell too far behind/);
  assert.equal(fastDestination.detached, undefined);
});

/** A local store that takes its time over each data pack, and notes how many spool files are open as each arrives. */
class SlowLocalStore extends LocalStore {
  private readonly spoolDir: string;
  mostSpooled = 0;
  packs = 0;
  constructor(dir: string, spoolDir: string) {
    super(dir);
    this.spoolDir = spoolDir;
  }
  override async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    await this.takeTime(name);
    return super.put(name, data, options);
  }
  // Data packs come from their spool files.
  override async putFrom(name: string, source: ObjectSource, options?: PutOptions): Promise<boolean> {
    await this.takeTime(name);
    return super.putFrom(name, source, options);
  }
  private async takeTime(name: string): Promise<void> {
    if (!name.startsWith('data/')) return;
    this.packs++;
    this.mostSpooled = Math.max(this.mostSpooled, openFilesUnder(this.spoolDir).length);
    await new Promise((r) => setTimeout(r, 30));
  }
}

// Regression: the walk waited for a slow destination only between files, so one big file piled its packs
// up (then in memory, now in spool files: every data pack is written to one as it fills).
test('one destination slower than the reading: the reading waits, inside a big file too, and packs do not pile up in the spool', async (t) => {
  const dir = tempDir(t);
  const source = makeSource(dir, { big: 24 << 20 });
  const spoolDir = path.join(dir, 'spool');
  fs.mkdirSync(spoolDir);
  const repoDir = path.join(dir, 'repo');
  const slow = new SlowLocalStore(repoDir, spoolDir);
  const repo = await openRepo([slow]);
  const run = new BackupRun(repo, {
    paths: [source],
    packSize: 1 << 20,
    spool: { memory: 2 << 20, disk: 1 << 30 },
    spoolDir,
    sink: { checkpointBytes: 64 << 20, checkpointMs: 60_000, backlogLimit: 2 << 20 },
  });
  const result = await run.run();
  await repo.close();
  assert.ok(result.destinations.every((d) => d.committed));
  assert.ok(slow.packs >= 12, `${slow.packs} packs`);
  // The backlog limit's two packs, each worker's open pack and the empty files offered ahead to each (2 × 2).
  assert.ok(slow.mostSpooled <= 8, `${slow.mostSpooled} spool files open at once, for ${slow.packs} packs`);
  ok(['check', '--read-data', '--repo', repoDir], { env: { COFFER_PASSWORD: PASS } });
  const target = path.join(dir, 'target');
  ok(['restore', '--repo', repoDir, 'latest', '--target', target], { env: { COFFER_PASSWORD: PASS } });
  assert.ok(fs.readFileSync(path.join(target, source, 'big')).equals(fs.readFileSync(path.join(source, 'big'))));
});

// Regression: the run makes its spool directory as it starts, and the spool removed it only if it had
// written a pack there: every backup left an empty coffer-spool-* directory in /tmp (2,351 on this machine).
test('a backup leaves no spool directory behind, whether it wrote packs there or not', async (t) => {
  const dir = tempDir(t);
  const source = makeSource(dir, { small: 4096 });
  const spoolDir = path.join(dir, 'spool');
  fs.mkdirSync(spoolDir);
  const repo = await openRepo([new LocalStore(path.join(dir, 'repo'))]);
  const result = await new BackupRun(repo, { paths: [source], spoolDir }).run();
  await repo.close();
  assert.ok(result.destinations.every((d) => d.committed));
  assert.deepEqual(fs.readdirSync(spoolDir), []);
});

test('a held chunk pool seals the pack in hand and starts no other until it is let go', async (t) => {
  const dir = tempDir(t);
  const repo = await openRepo([new LocalStore(path.join(dir, 'repo'))]);
  t.after(() => repo.close());
  const packs: SealedDataPack[] = [];
  // Each pack's spool file is the receiver's to close.
  const events = { onPack: (p: SealedDataPack) => {
      packs.push(p);
      p.file.close();
    }, onRead: () => {}, onFatal: (err: Error) => assert.fail(err) };
  const setup = { chunkerSeed: repo.keys.chunkerSeed, chunker: repo.config.chunker, idKey: repo.keys.idKey, dataKey: repo.keys.dataKey, packSize: 256 * 1024, zstdLevel: DEFAULT_ZSTD_LEVEL, spoolDir: dir };
  const pool = new ChunkPool(setup, repo.index, events, 1);
  t.after(() => pool.close());
  const file = path.join(dir, 'big');
  fs.writeFileSync(file, seededBytes('big', 8 << 20));
  const stat = fs.statSync(file, { bigint: true });
  pool.holdPacks(true);
  let read = false;
  pool.submit(Buffer.from(file), { size: 8 << 20, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs }, 0, () => (read = true));
  const deadline = Date.now() + 10_000;
  while (packs.length === 0) {
    assert.ok(Date.now() < deadline, 'no pack sealed');
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(packs.length, 1, 'one pack, then the worker waits');
  assert.equal(read, false);
  pool.holdPacks(false);
  await pool.flush();
  assert.equal(read, true);
  assert.ok(packs.length >= 4, `${packs.length} packs for 8 MiB in 256 KiB packs (chunks of 1 MiB on average)`);
});

test('transient errors are retried (the destination shows "retrying"), a denied one is not', async (t) => {
  const dir = tempDir(t);
  const source = makeSource(dir, { a: 3 << 20, b: 3 << 20 });
  const retries: number[] = [];
  const hiccups = new RetryStore(new FaultStore(new LocalStore(path.join(dir, 'hiccups')), { errorRate: 0.3, seed: 7 }), {
    attempts: 20,
    baseDelay: 1,
    onRetry: (attempt) => retries.push(attempt),
  });
  const repo = await openRepo([new LocalStore(path.join(dir, 'plain')), hiccups]);
  retries.length = 0;
  const run = new BackupRun(repo, { paths: [source], packSize: 1 << 20 });
  const states = new Set<string>();
  const watcher = setInterval(() => states.add(run.progress().destinations.find((d) => d.location === hiccups.location)!.state), 1);
  const result = await run.run();
  clearInterval(watcher);
  assert.ok(result.destinations.every((d) => d.committed));
  assert.ok(retries.length > 0, 'some calls failed and were retried');
  assert.ok(states.has('retrying'), `states seen: ${[...states].join(', ')}`);

  const denied = new FaultStore(new LocalStore(path.join(dir, 'denied')), { failAfterPuts: 0, failKind: 'denied' });
  let deniedRetries = 0;
  const guarded = new RetryStore(denied, { baseDelay: 1, onRetry: () => deniedRetries++ });
  const plain = new LocalStore(path.join(dir, 'plain2'));
  await initRepository([plain], PASS);
  await new SyncRun(plain, [new LocalStore(path.join(dir, 'denied'))]).run();
  const two = await Repository.open([plain, guarded], PASS);
  await two.loadIndex();
  const outcome = await new BackupRun(two, { paths: [source] }).run();
  assert.equal(deniedRetries, 0, 'a permanent error is not retried');
  assert.deepEqual(outcome.destinations.map((d) => d.committed).sort(), [false, true]);
});

test('priority paths and small files go first, and their packs are uploaded first', async (t) => {
  const dir = tempDir(t);
  const source = makeSource(dir, {
    'archive/big-1': 3 << 20,
    'archive/big-2': 3 << 20,
    'documents/cv.pdf': 300_000,
    'documents/notes.txt': 20_000,
    'documents/thesis.pdf': 2 << 20,
  });
  const store = new RecordingStore();
  const repo = await openRepo([store]);
  store.order.length = 0;
  await new BackupRun(repo, { paths: [source], packSize: 256 * 1024, workers: 1, priorities: [{ path: path.join(source, 'documents'), level: 10 }] }).run();
  const uploadPosition = new Map(store.order.map((name, i) => [name.slice(name.lastIndexOf('/') + 1), i]));
  const snapshot = (await repo.listSnapshots())[0]!;
  const firstPackOf = new Map<string, number>();
  for await (const { path: p, node } of walkTree(repo, Buffer.from(snapshot.snapshot.tree, 'hex'))) {
    const first = contentIds(node)[0];
    if (first) firstPackOf.set(p.toString(), uploadPosition.get(repo.index.lookup(first)!.packId)!);
  }
  // Tree paths have no leading slash; the source sits at its full path.
  const at = (name: string): number => firstPackOf.get(path.join(source, name).slice(1))!;
  assert.ok(at('documents/notes.txt') <= at('documents/cv.pdf'), 'small files first');
  assert.ok(at('documents/cv.pdf') <= at('documents/thesis.pdf'));
  assert.ok(at('documents/thesis.pdf') < at('archive/big-1'), 'the priority path before the rest');
});

test('adaptive concurrency climbs while throughput grows and settles where it stops growing', () => {
  let now = 0;
  const tuner = new ConcurrencyTuner({ initial: 1, max: 16, windowMs: 1000, now: () => now });
  // A link that gains from parallel uploads up to 6 at once, and loses a little beyond.
  const throughputAt = (n: number): number => (n <= 6 ? n * 10 : 60 - (n - 6) * 5);
  for (let window = 0; window < 40; window++) {
    now += 1000;
    tuner.record(throughputAt(tuner.current) * 1000);
  }
  assert.ok(tuner.current >= 5 && tuner.current <= 7, `settled at ${tuner.current}`);

  let now2 = 0;
  const idle = new ConcurrencyTuner({ initial: 3, windowMs: 1000, now: () => now2 });
  for (let window = 0; window < 10; window++) {
    idle.noteStarved();
    now2 += 1000;
    idle.record(1000);
  }
  assert.equal(idle.current, 3, 'a starved destination tells nothing about concurrency');
});

test('waiting work ages: a low-priority pack is not starved by a stream of high-priority ones', async () => {
  let now = 0;
  const store = new RecordingStore();
  const destination = new Destination(store, { concurrency: 1, maxConcurrency: 1, now: () => now });
  const load = async (): Promise<Uint8Array> => new Uint8Array(1);
  // The only upload slot stays busy while the queue fills up over 200 s.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const puts: Promise<void>[] = [destination.put({ name: objectName('data', 'blocker'), size: 1, load: () => gate.then(load) })];
  puts.push(destination.put({ name: objectName('data', 'low'), size: 1, load, priority: 0 }));
  for (let i = 0; i < 20; i++) {
    now += 10_000;
    puts.push(destination.put({ name: objectName('data', `high-${i}`), size: 1, load, priority: 1 }));
  }
  open();
  await Promise.all(puts);
  const position = store.order.indexOf(objectName('data', 'low'));
  // Only the high-priority packs queued within 30 s of it (one level of aging) go before it.
  assert.ok(position > 1 && position <= 4, `the low-priority pack went at position ${position}`);
});

test("an object's done() says how the destination let go of it: stored; failed, when a store may still hold its bytes; or dropped", async () => {
  const store = new FaultStore(new MemoryStore('mem:done'));
  const destination = new Destination(store, { concurrency: 1, maxConcurrency: 1 });
  const calls: [string, PutOutcome][] = [];
  const put = (name: string): Promise<void> => destination.put({ name: objectName('data', name), size: 1, load: async () => new Uint8Array(1), done: (outcome) => calls.push([name, outcome]) });
  await put('stored');
  store.goOffline();
  const failed = put('failed');
  const dropped = put('dropped');
  await assert.rejects(failed);
  await assert.rejects(dropped);
  await assert.rejects(put('after'));
  assert.deepEqual(calls, [['stored', 'stored'], ['failed', 'failed'], ['dropped', 'dropped'], ['after', 'dropped']]);
});
