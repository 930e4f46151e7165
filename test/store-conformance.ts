// The promises of the Store interface, checked against every backend: each backend's test file calls
// storeConformance with a function that gives a fresh, empty store.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { StoreError, packName, type ObjectInfo, type ObjectSource, type Store, type StoreErrorKind } from '../src/store/store.ts';

const MiB = 1024 * 1024;

function randomId(): string {
  return crypto.randomBytes(32).toString('hex');
}

/** Name and size only: modification times are checked on their own. */
function nameAndSize(info: ObjectInfo | undefined): ObjectInfo | undefined {
  return info && { name: info.name, size: info.size };
}

async function listAll(store: Store, dir: string): Promise<ObjectInfo[]> {
  const found: ObjectInfo[] = [];
  for await (const info of store.list(dir)) found.push(nameAndSize(info)!);
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/** Asserts a StoreError of `kind` whose one-line message names the object and the store. */
export async function rejectsWith(promise: Promise<unknown>, kind: StoreErrorKind, store: Store, name?: string): Promise<StoreError> {
  let caught: unknown;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof StoreError, `expected a StoreError, got ${caught}`);
  assert.equal(caught.kind, kind, caught.message);
  assert.doesNotMatch(caught.message, /\n/);
  assert.ok(caught.message.includes(store.location), `message does not name the store: ${caught.message}`);
  if (name) assert.ok(caught.message.includes(name), `message does not name the object: ${caught.message}`);
  return caught;
}

export interface ConformanceOptions {
  /** The store refuses deletes (an append-only REST server): they must fail as 'denied' and change nothing. */
  readonly appendOnly?: boolean;
  /** The backend cannot say when an object was written (rclone serve restic sends no Last-Modified). */
  readonly noTimes?: boolean;
}

export function storeConformance(name: string, makeStore: () => Promise<Store>, { appendOnly = false, noTimes = false }: ConformanceOptions = {}): void {
  /** Runs `body` with a fresh store and closes it afterwards. */
  const withStore = (body: (store: Store) => Promise<void>) => async () => {
    const store = await makeStore();
    try {
      await body(store);
    } finally {
      await store.close();
    }
  };

  describe(`${name} store conformance`, () => {
    it('stores an object and reads it back', withStore(async (store) => {
      const data = Buffer.from('hello, coffer');
      assert.equal(await store.put('config', data), true);
      assert.deepEqual(await store.get('config'), data);
      assert.deepEqual(nameAndSize(await store.stat('config')), { name: 'config', size: data.length });
    }));

    it('never overwrites: a second put of the same name returns false and keeps the first bytes', withStore(async (store) => {
      const name = packName(randomId());
      const first = crypto.randomBytes(1000);
      assert.equal(await store.put(name, first), true);
      assert.equal(await store.put(name, first), false);
      // Same size, other bytes: names are content hashes, so the store takes it for the same object.
      assert.equal(await store.put(name, crypto.randomBytes(1000)), false);
      assert.deepEqual(await store.get(name), first);
    }));

    it('reports a conflict when an object of that name has another size', withStore(async (store) => {
      const name = `index/${randomId()}`;
      const first = crypto.randomBytes(100);
      await store.put(name, first);
      await rejectsWith(store.put(name, crypto.randomBytes(101)), 'conflict', store, name);
      assert.deepEqual(await store.get(name), first);
    }));

    it('reads ranges, and refuses ranges past the end', withStore(async (store) => {
      const name = packName(randomId());
      const data = crypto.randomBytes(10_000);
      await store.put(name, data);
      assert.deepEqual(await store.get(name, { offset: 0, length: 1 }), data.subarray(0, 1));
      assert.deepEqual(await store.get(name, { offset: 1234, length: 5000 }), data.subarray(1234, 6234));
      assert.deepEqual(await store.get(name, { offset: 9000, length: 1000 }), data.subarray(9000));
      assert.deepEqual(await store.get(name, { offset: 0, length: 10_000 }), data);
      assert.equal((await store.get(name, { offset: 500, length: 0 })).length, 0);
      await rejectsWith(store.get(name, { offset: 9000, length: 1001 }), 'permanent', store, name);
      await rejectsWith(store.get(name, { offset: 20_000, length: 10 }), 'permanent', store, name);
    }));

    it("reports missing objects as 'not-found'", withStore(async (store) => {
      const name = packName(randomId());
      await rejectsWith(store.get(name), 'not-found', store, name);
      await rejectsWith(store.get(name, { offset: 0, length: 10 }), 'not-found', store, name);
      assert.equal(await store.stat(name), undefined);
    }));

    it('lists objects under a folder, recursively, with their sizes', withStore(async (store) => {
      const packs = [`ab${randomId().slice(2)}`, `ab${randomId().slice(2)}`, `cd${randomId().slice(2)}`].map(packName);
      for (const [i, pack] of packs.entries()) await store.put(pack, Buffer.alloc(10 + i));
      const index = `index/${randomId()}`;
      await store.put(index, Buffer.alloc(3));
      await store.put(`keys/${randomId()}`, Buffer.alloc(4));
      await store.put('config', Buffer.alloc(5));
      const expected = packs.map((pack, i) => ({ name: pack, size: 10 + i })).sort((a, b) => a.name.localeCompare(b.name));
      assert.deepEqual(await listAll(store, 'data'), expected);
      assert.deepEqual(await listAll(store, 'index'), [{ name: index, size: 3 }]);
      assert.deepEqual(await listAll(store, 'snapshots'), []);
      // Uploads in progress live under tmp/; finished ones leave nothing behind there.
      assert.deepEqual(await listAll(store, 'tmp'), []);
    }));

    it("reports when an object was written, by the storage's clock, in stat and list", withStore(async (store) => {
      // Prune measures the age of writer markers with these times (docs/FORMAT.md 12.1).
      const before = Date.now();
      const marker = `writers/${randomId()}`;
      await store.put(marker, Buffer.from('one'));
      const first = await store.stat(marker);
      const listed = [];
      for await (const o of store.list('writers')) listed.push(o);
      assert.equal(listed.length, 1);
      if (noTimes && first?.modified === undefined) {
        // Then prune falls back to the markers' own times (FORMAT.md 12.5): never a made-up time.
        assert.equal(listed[0]!.modified, undefined);
        return;
      }
      assert.equal(typeof first?.modified, 'number', 'stat gives no modification time');
      // The server here is this machine: its clock is ours, to the second (SFTP has whole seconds).
      assert.ok(Math.abs(first!.modified! - before) < 5_000, `modification time ${first!.modified} is far from now ${before}`);
      assert.ok(Math.abs(listed[0]!.modified! - first!.modified!) < 1_000, 'list and stat disagree on the time');
    }));

    if (appendOnly) {
      it('refuses deletes cleanly, keeping the object', withStore(async (store) => {
        const name = `snapshots/${randomId()}`;
        await store.put(name, Buffer.from('snapshot'));
        const refused = await rejectsWith(store.delete(name), 'denied', store, name);
        assert.match(refused.message, /append-only/);
        assert.deepEqual(await store.get(name), Buffer.from('snapshot'));
        assert.equal(await store.put(name, Buffer.from('snapshot')), false);
      }));
    } else {
      it('deletes objects, and deleting a missing object is not an error', withStore(async (store) => {
        const name = `snapshots/${randomId()}`;
        await store.put(name, Buffer.from('snapshot'));
        await store.delete(name);
        assert.equal(await store.stat(name), undefined);
        await rejectsWith(store.get(name), 'not-found', store, name);
        await store.delete(name);
        await store.delete(`snapshots/${randomId()}`);
        assert.equal(await store.put(name, Buffer.from('again')), true);
      }));
    }

    it('keeps every byte value, and empty objects', withStore(async (store) => {
      const all = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
      const bytes = `keys/${randomId()}`;
      await store.put(bytes, all);
      assert.deepEqual(await store.get(bytes), all);
      const empty = `keys/${randomId()}`;
      await store.put(empty, new Uint8Array(0));
      assert.equal((await store.get(empty)).length, 0);
      assert.deepEqual(nameAndSize(await store.stat(empty)), { name: empty, size: 0 });
    }));

    it('round-trips an object larger than the multipart threshold byte for byte', withStore(async (store) => {
      const name = packName(randomId());
      const data = crypto.randomBytes(20 * MiB + 12345);
      assert.equal(await store.put(name, data), true);
      assert.equal((await store.stat(name))?.size, data.length);
      const back = await store.get(name);
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data), 'the object came back different');
      // Across the 16 MiB part boundary of a multipart upload.
      const range = { offset: 16 * MiB - 1000, length: 3000 };
      assert.deepEqual(await store.get(name, range), data.subarray(range.offset, range.offset + range.length));
    }));

    it('a stopped put rejects and leaves nothing under the name, nor a partial object', withStore(async (store) => {
      const early = packName(randomId());
      await assert.rejects(store.put(early, Buffer.from('never sent'), { signal: AbortSignal.abort() }), { name: 'AbortError' });
      assert.equal(await store.stat(early), undefined);
      // Stopped while its bytes go (for S3, across a multipart upload's parts): all or nothing.
      const name = packName(randomId());
      const data = crypto.randomBytes(20 * MiB + 12345);
      const stop = new AbortController();
      const putting = store.put(name, data, { signal: stop.signal });
      setTimeout(() => stop.abort(), 5);
      const outcome = await putting.then(
        () => 'stored',
        (err: Error) => err.name,
      );
      if (outcome === 'stored') assert.ok((await store.get(name)).equals(data), 'a put that was not stopped in time stored the whole object');
      else assert.equal(outcome, 'AbortError');
      assert.deepEqual(await listAll(store, 'data'), outcome === 'stored' ? [{ name, size: data.length }] : []);
    }));

    // Only stores that write as they read have putFrom (local); a backup hands them packs in spool files.
    it('putFrom stores what put would, never overwrites, and a source that ends early or a stop leaves nothing', withStore(async (store) => {
      if (!store.putFrom) return;
      const source = (data: Buffer, size = data.length): ObjectSource => ({ size, read: async (into, position) => data.copy(into, 0, position, Math.min(data.length, position + into.length)) });
      const name = packName(randomId());
      // Several pieces of the copy and a tail.
      const data = crypto.randomBytes(3 * MiB + 777);
      assert.equal(await store.putFrom(name, source(data)), true);
      assert.ok((await store.get(name)).equals(data));
      assert.equal(await store.putFrom(name, source(data)), false);
      await rejectsWith(store.putFrom(name, source(data.subarray(1))), 'conflict', store, name);
      const short = packName(randomId());
      await assert.rejects(store.putFrom(short, source(data, data.length + 10)), /ends after/);
      await assert.rejects(store.putFrom(packName(randomId()), source(data), { signal: AbortSignal.abort() }), { name: 'AbortError' });
      assert.deepEqual(await listAll(store, 'data'), [{ name, size: data.length }]);
      assert.deepEqual(await listAll(store, 'tmp'), []);
    }));

    it('stores different objects concurrently', withStore(async (store) => {
      const objects = Array.from({ length: 24 }, (_, i) => ({ name: packName(`${i % 3}0${randomId().slice(2)}`), data: crypto.randomBytes(1000 + i) }));
      const results = await Promise.all(objects.map(({ name, data }) => store.put(name, data)));
      assert.deepEqual(results, objects.map(() => true));
      for (const { name, data } of objects) assert.deepEqual(await store.get(name), data);
      assert.equal((await listAll(store, 'data')).length, objects.length);
    }));

    it('refuses every name outside the repository layout, and writes nothing for it', withStore(async (store) => {
      const id = randomId();
      const bad = [
        '',
        '/config',
        'config/',
        '../config',
        `keys/../../${id}`,
        `keys/../${id}`,
        `keys/${id}/x`,
        `keys/${id.toUpperCase()}`,
        `keys/${id.slice(1)}`,
        `data/${id}`,
        `data/zz/${id}`,
        `data/${id.slice(0, 2)}/../${id}`,
        `data/${id[0] === 'a' ? 'b' : 'a'}${id[1]}/${id}`,
        `data//${id}`,
        `index/${id}\n`,
        `snapshots/${id}\u0000`,
        `tmp/../${id}`,
        'locks/x',
        'keys',
      ];
      for (const name of bad) {
        for (const op of [() => store.put(name, Buffer.from('x')), () => store.get(name), () => store.get(name, { offset: 0, length: 1 }), () => store.stat(name), () => store.delete(name)]) {
          const err = await rejectsWith(op(), 'permanent', store);
          assert.match(err.message, /not an object name of a Coffer repository/);
        }
      }
      for (const dir of ['', '.', '..', 'data/ab', 'config', 'keys/..', '../keys', 'locks']) {
        await rejectsWith(listAll(store, dir), 'permanent', store);
      }
      for (const dir of ['keys', 'data', 'index', 'snapshots', 'tmp']) assert.deepEqual(await listAll(store, dir), [], `nothing in ${dir}`);
    }));

    // rclone serve restic --append-only shows a second writer the object while the first still writes it (0 bytes).
    it('survives concurrent puts of the same object', { skip: appendOnly && 'an append-only REST server has no atomic create' }, withStore(async (store) => {
      const name = packName(randomId());
      const data = crypto.randomBytes(50_000);
      const results = await Promise.all(Array.from({ length: 6 }, () => store.put(name, data)));
      assert.ok(results.includes(true), 'no put reported storing the object');
      assert.deepEqual(await store.get(name), data);
      assert.deepEqual(await listAll(store, 'tmp'), []);
    }));
  });
}
