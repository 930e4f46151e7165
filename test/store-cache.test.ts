// The local cache of remote repositories (src/store/cache.ts): what it keeps, that a copy is served only
// when it is exactly the object its name says, that copies of deleted objects go, and that several
// processes can share one cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { maxPackBytesFor } from '../src/format/pack.ts';
import { CacheStore, defaultCacheRoot } from '../src/store/cache.ts';
import { DELETIONS_DIR, WRITERS_DIR } from '../src/store/layout.ts';
import { LocalStore } from '../src/store/local.ts';
import { S3Store } from '../src/store/s3.ts';
import { packName, type ByteRange, type ObjectHint, type ObjectInfo, type Store } from '../src/store/store.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';

/** A config that decodeConfig accepts, with a given repository id. */
function configBytes(id = crypto.randomBytes(32).toString('hex')): Buffer {
  const config = { format: 'coffer', version: 1, id, created: '2026-01-01T00:00:00.000Z', chunker: { algorithm: 'fastcdc-gear32', min: 524288, avg: 1048576, max: 8388608 } };
  return Buffer.from(JSON.stringify(config));
}

/** An object named by the SHA-256 of its bytes, as every repository object is. */
function object(dir: 'index' | 'snapshots' | 'data' | typeof DELETIONS_DIR | typeof WRITERS_DIR, content: string): { name: string; bytes: Buffer } {
  const bytes = Buffer.from(content);
  const id = crypto.hash('sha256', bytes, 'hex');
  return { name: dir === 'data' ? packName(id) : `${dir}/${id}`, bytes };
}

/** A memory store that counts the reads reaching it. */
class CountingStore extends MemoryStore {
  gets: string[] = [];

  override async get(name: string, range?: ByteRange, _hint?: ObjectHint): Promise<Buffer> {
    this.gets.push(name);
    return super.get(name, range);
  }
}

let root: string;
let remote: CountingStore;
const id = 'ab'.repeat(32);

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cache-test-'));
  remote = new CountingStore();
  await remote.put('config', configBytes(id));
});

afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const cachedFile = (name: string, repoId = id): string => path.join(root, repoId, name);

async function listNames(store: Store, dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const info of store.list(dir)) names.push(info.name);
  return names.sort();
}

/** Moves a cached copy's mtime back, past the grace that protects copies another process just added. */
function age(file: string): void {
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(file, old, old);
}

describe('CacheStore', () => {
  it('keeps index files and snapshots after the first read; a later process reads them without the store', async () => {
    const index = object('index', 'index one');
    const snapshot = object('snapshots', 'snapshot one');
    await remote.put(index.name, index.bytes);
    await remote.put(snapshot.name, snapshot.bytes);
    const first = new CacheStore(remote, root);
    assert.deepEqual(await first.get(index.name), index.bytes);
    assert.deepEqual(await first.get(snapshot.name), snapshot.bytes);
    assert.deepEqual(fs.readFileSync(cachedFile(index.name)), index.bytes);
    assert.ok(fs.readFileSync(path.join(root, 'CACHEDIR.TAG'), 'utf8').startsWith('Signature: 8a477f597d28d172789f06886806bc55'));

    remote.gets = [];
    const second = new CacheStore(remote, root);
    assert.deepEqual(await second.get(index.name), index.bytes);
    assert.deepEqual(await second.get(snapshot.name), snapshot.bytes);
    // Only the config, which says which repository's copies to use.
    assert.deepEqual(remote.gets, ['config']);
  });

  it('keeps a pack only when the caller says it holds trees; ranges and keys always go to the store', async () => {
    const trees = object('data', 'tree pack');
    const data = object('data', 'data pack');
    await remote.put(trees.name, trees.bytes);
    await remote.put(data.name, data.bytes);
    const store = new CacheStore(remote, root);
    await store.get(trees.name, undefined, { metadata: true });
    await store.get(data.name);
    await store.get(data.name, { offset: 1, length: 3 });
    assert.ok(fs.existsSync(cachedFile(trees.name)));
    assert.ok(!fs.existsSync(cachedFile(data.name)));

    remote.gets = [];
    assert.deepEqual(await store.get(trees.name), trees.bytes, 'a cached pack serves any whole read');
    assert.deepEqual(await store.get(trees.name, { offset: 2, length: 4 }), trees.bytes.subarray(2, 6));
    assert.deepEqual(remote.gets, [trees.name]);
  });

  it('writes through: index files, snapshots and tree packs the store has accepted', async () => {
    const store = new CacheStore(remote, root);
    const index = object('index', 'new index');
    const trees = object('data', 'new trees');
    const data = object('data', 'new data');
    assert.equal(await store.put(index.name, index.bytes), true);
    await store.put(trees.name, trees.bytes, { metadata: true });
    await store.put(data.name, data.bytes);
    assert.deepEqual(fs.readFileSync(cachedFile(index.name)), index.bytes);
    assert.deepEqual(fs.readFileSync(cachedFile(trees.name)), trees.bytes);
    assert.ok(!fs.existsSync(cachedFile(data.name)));

    // A write the store refuses leaves no copy: the cache never holds what the store lacks.
    const refused = object('snapshots', 'refused');
    const failing = new CacheStore(
      Object.assign(Object.create(remote) as Store, {
        put: async () => {
          throw new Error('disk full');
        },
      }),
      root,
    );
    await assert.rejects(failing.put(refused.name, refused.bytes), /disk full/);
    assert.ok(!fs.existsSync(cachedFile(refused.name)));
  });

  it('never serves a copy that is not the object its name says: a damaged or stale copy is read again from the store', async () => {
    const index = object('index', 'the real index');
    await remote.put(index.name, index.bytes);
    const damaged: string[] = [];
    const store = new CacheStore(remote, root, { onDamaged: (name) => damaged.push(name) });
    await store.get(index.name);
    const file = cachedFile(index.name);

    // A flipped byte, a truncated file, other content under the name (a stale or planted file), an empty file.
    for (const bad of [Buffer.from('the real indey'), Buffer.from('the real'), Buffer.from('another index'), Buffer.alloc(0)]) {
      fs.writeFileSync(file, bad);
      remote.gets = [];
      assert.deepEqual(await store.get(index.name), index.bytes);
      assert.deepEqual(remote.gets, [index.name]);
      assert.deepEqual(fs.readFileSync(file), index.bytes, 'the copy is repaired');
    }
    assert.equal(damaged.length, 4);
  });

  it('drops the copies of index files and snapshots a complete listing no longer shows', async () => {
    const kept = object('snapshots', 'kept');
    const forgotten = object('snapshots', 'forgotten');
    const young = object('snapshots', 'written a moment ago by another process');
    const staleTrees = object('data', 'repacked trees');
    for (const o of [kept, forgotten, young, staleTrees]) await remote.put(o.name, o.bytes);
    const store = new CacheStore(remote, root);
    for (const o of [kept, forgotten, young]) await store.get(o.name);
    await store.get(staleTrees.name, undefined, { metadata: true });
    for (const o of [kept, forgotten, staleTrees]) age(cachedFile(o.name));
    for (const o of [forgotten, young, staleTrees]) await remote.delete(o.name);

    // A listing stopped part-way proves nothing about what is gone.
    for await (const _ of store.list('snapshots')) break;
    assert.ok(fs.existsSync(cachedFile(forgotten.name)));

    assert.deepEqual(await listNames(store, 'snapshots'), [kept.name]);
    assert.ok(fs.existsSync(cachedFile(kept.name)));
    assert.ok(!fs.existsSync(cachedFile(forgotten.name)));
    assert.ok(fs.existsSync(cachedFile(young.name)), 'a copy newer than the listing is left for the next one');

    await listNames(store, 'data');
    assert.ok(!fs.existsSync(cachedFile(staleTrees.name)));
  });

  it('drops the copies of packs the loaded index no longer lists (pruned by another machine), except young ones', async () => {
    const [kept, pruned, young] = ['kept trees', 'pruned trees', 'trees just written by another process'].map((c) => object('data', c));
    const store = new CacheStore(remote, root);
    for (const o of [kept!, pruned!, young!]) await store.put(o.name, o.bytes, { metadata: true });
    for (const o of [kept!, pruned!]) age(cachedFile(o.name));
    await store.pruneCopies((name) => name === kept!.name);
    assert.ok(fs.existsSync(cachedFile(kept!.name)));
    assert.ok(!fs.existsSync(cachedFile(pruned!.name)));
    assert.ok(fs.existsSync(cachedFile(young!.name)));
  });

  it('delete removes the copy too', async () => {
    const snapshot = object('snapshots', 'to delete');
    const store = new CacheStore(remote, root);
    await store.put(snapshot.name, snapshot.bytes);
    await store.delete(snapshot.name);
    assert.ok(!fs.existsSync(cachedFile(snapshot.name)));
    await assert.rejects(store.get(snapshot.name), { name: 'StoreError', kind: 'not-found' });
  });

  it('keys copies by repository id: a new repository at the same location sees none of the old one', async () => {
    const snapshot = object('snapshots', 'of the first repository');
    await remote.put(snapshot.name, snapshot.bytes);
    await new CacheStore(remote, root).get(snapshot.name);

    const otherId = 'cd'.repeat(32);
    const recreated = new CountingStore();
    await recreated.put('config', configBytes(otherId));
    const store = new CacheStore(recreated, root);
    await assert.rejects(store.get(snapshot.name), { kind: 'not-found' });
    assert.ok(fs.existsSync(cachedFile(snapshot.name)));
    assert.deepEqual(fs.readdirSync(root).sort(), ['CACHEDIR.TAG', id]);
  });

  it('a repository without a readable config is read without the cache', async () => {
    const bare = new CountingStore();
    const snapshot = object('snapshots', 'no config');
    await bare.put(snapshot.name, snapshot.bytes);
    await bare.put('config', Buffer.from('{"format":"something else"}'));
    const store = new CacheStore(bare, root);
    assert.deepEqual(await store.get(snapshot.name), snapshot.bytes);
    assert.deepEqual(fs.readdirSync(root), []);
  });

  it('a cache that cannot be written is left alone, with one warning, and the store serves every read', async () => {
    const blocked = path.join(root, 'blocked');
    fs.writeFileSync(blocked, 'a file where the cache directory should be');
    const index = object('index', 'still readable');
    await remote.put(index.name, index.bytes);
    const warnings: string[] = [];
    const store = new CacheStore(remote, blocked, { onUnusable: (reason) => warnings.push(reason) });
    assert.deepEqual(await store.get(index.name), index.bytes);
    assert.deepEqual(await store.get(index.name), index.bytes);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /cannot be used .*reading from memory: directly/);
  });

  it('passes on the removal of incomplete uploads: prune on S3 runs through the cache', async () => {
    const before: number[] = [];
    const s3Like = Object.assign(Object.create(remote) as Store, { removeIncomplete: async (t: number) => (before.push(t), 3) });
    assert.equal(await new CacheStore(s3Like, root).removeIncomplete?.(1234), 3);
    assert.deepEqual(before, [1234]);
  });

  it('defaults to $XDG_CACHE_HOME/coffer, else ~/.cache/coffer', () => {
    assert.equal(defaultCacheRoot({ XDG_CACHE_HOME: '/var/cache/me' }), '/var/cache/me/coffer');
    assert.equal(defaultCacheRoot({ XDG_CACHE_HOME: 'relative' }), path.join(os.homedir(), '.cache', 'coffer'));
    assert.equal(defaultCacheRoot({}), path.join(os.homedir(), '.cache', 'coffer'));
  });
});

// Each child reads every object through its own CacheStore on the same cache, many times over, while
// the other does the same and lists (which prunes); it prints the SHA-256 of everything it read.
const CHILD = `
import { CacheStore } from ${JSON.stringify(path.resolve(import.meta.dirname, '../src/store/cache.ts'))};
import { LocalStore } from ${JSON.stringify(path.resolve(import.meta.dirname, '../src/store/local.ts'))};
import crypto from 'node:crypto';
const [repo, root, names] = [process.argv[1], process.argv[2], JSON.parse(process.argv[3])];
const store = new CacheStore(new LocalStore(repo), root, { onDamaged: (n) => { console.error('damaged ' + n); process.exit(2); } });
const digests = new Set();
for (let round = 0; round < 20; round++) {
  await Promise.all(names.map(async (name) => digests.add(name + ' ' + crypto.hash('sha256', await store.get(name, undefined, { metadata: true }), 'hex'))));
  for await (const _ of store.list('snapshots'));
}
console.log(JSON.stringify([...digests].sort()));
`;

function runChild(repo: string, cache: string, names: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, repo, cache, JSON.stringify(names)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe('CacheStore shared by two processes', () => {
  it('both read every object correctly while filling and pruning the same cache', async () => {
    const repo = path.join(root, 'repo');
    const local = new LocalStore(repo);
    await local.put('config', configBytes(id));
    const objects = [
      ...Array.from({ length: 20 }, (_, i) => object('snapshots', `snapshot ${i} `.repeat(100 + i))),
      ...Array.from({ length: 10 }, (_, i) => object('index', `index ${i} `.repeat(5000))),
      ...Array.from({ length: 5 }, (_, i) => object('data', `trees ${i} `.repeat(50_000))),
    ];
    for (const o of objects) await local.put(o.name, o.bytes);
    const cache = path.join(root, 'cache');
    const names = objects.map((o) => o.name);
    const [a, b] = await Promise.all([runChild(repo, cache, names), runChild(repo, cache, names)]);
    const expected = JSON.stringify(objects.map((o) => `${o.name} ${crypto.hash('sha256', o.bytes, 'hex')}`).sort());
    assert.equal(a.trim(), expected);
    assert.equal(b.trim(), expected);
    for (const o of objects) assert.deepEqual(fs.readFileSync(path.join(cache, id, o.name)), o.bytes);
    assert.deepEqual(fs.readdirSync(path.join(cache, id, 'tmp')), [], 'no half-written copy is left behind');
  });
});

/** A real store with every call it answers written down ('get data/ab/…', 'stat …', 'list index'). */
class Recorder implements Store {
  readonly location: string;
  readonly inner: Store;
  calls: string[] = [];

  constructor(inner: Store) {
    this.inner = inner;
    this.location = inner.location;
  }

  put(name: string, data: Uint8Array): Promise<boolean> {
    this.calls.push(`put ${name}`);
    return this.inner.put(name, data);
  }

  get(name: string, range?: ByteRange): Promise<Buffer> {
    this.calls.push(`get ${name}${range ? ` ${range.offset}+${range.length}` : ''}`);
    return this.inner.get(name, range);
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    this.calls.push(`stat ${name}`);
    return this.inner.stat(name);
  }

  list(dir: string): AsyncIterable<ObjectInfo> {
    this.calls.push(`list ${dir}`);
    return this.inner.list(dir);
  }

  delete(name: string): Promise<void> {
    this.calls.push(`delete ${name}`);
    return this.inner.delete(name);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

// The same promises over the stores a cache sits in front of in real use: a bucket of s3rver, and a
// local directory (what an SFTP or rclone repository looks like to the cache). "Another process" is a
// second store on the same location, without a cache, changing the repository behind the cache's back.
let s3: S3Server | undefined;
let s3Prefix = 0;

const backends: Record<string, () => Promise<Store>> = {
  local: async () => new LocalStore(path.join(root, `repo-${s3Prefix++}`)),
  s3: async () => {
    s3 ??= await startS3Server('cache-store');
    return new S3Store(`s3:${s3.endpoint}/${s3.bucket}/repo-${s3Prefix++}`, { env: { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey } });
  },
};

after(() => s3?.stop());

for (const [kind, open] of Object.entries(backends)) {
  describe(`CacheStore over a ${kind} store changed by another process`, () => {
    let store: Recorder;
    let cache: CacheStore;
    let other: Store;

    before(async () => {
      // The s3rver child starts once; its first answer can take a while on a busy machine.
      if (kind === 's3') await (await backends.s3!()).close();
    });

    beforeEach(async () => {
      const raw = await open();
      store = new Recorder(raw);
      other = raw;
      await other.put('config', configBytes(id));
      cache = new CacheStore(store, root);
    });

    afterEach(() => store.inner.close());

    it('a snapshot another process deleted is not listed, and its copy goes once no listing can have missed it', async () => {
      const kept = object('snapshots', `kept ${kind}`);
      const forgotten = object('snapshots', `forgotten ${kind}`);
      for (const o of [kept, forgotten]) await other.put(o.name, o.bytes);
      assert.deepEqual(await listNames(cache, 'snapshots'), [kept.name, forgotten.name].sort());
      for (const o of [kept, forgotten]) await cache.get(o.name);
      await other.delete(forgotten.name);
      assert.deepEqual(await listNames(cache, 'snapshots'), [kept.name]);
      age(cachedFile(forgotten.name));
      assert.deepEqual(await listNames(cache, 'snapshots'), [kept.name]);
      assert.ok(!fs.existsSync(cachedFile(forgotten.name)));
      await assert.rejects(cache.get(forgotten.name), { name: 'StoreError', kind: 'not-found' });
      assert.ok(fs.existsSync(cachedFile(kept.name)));
    });

    it('an index file replaced by another process (as prune does): the listing names the new one, read from the store', async () => {
      const old = object('index', `old index ${kind}`);
      await other.put(old.name, old.bytes);
      for (const name of await listNames(cache, 'index')) await cache.get(name);
      const replacement = object('index', `rewritten index ${kind}`);
      await other.put(replacement.name, replacement.bytes);
      await other.delete(old.name);
      store.calls = [];
      const names = await listNames(cache, 'index');
      assert.deepEqual(names, [replacement.name]);
      assert.deepEqual(await cache.get(replacement.name), replacement.bytes);
      assert.deepEqual(store.calls, ['list index', `get ${replacement.name}`]);
      age(cachedFile(old.name));
      await listNames(cache, 'index');
      assert.ok(!fs.existsSync(cachedFile(old.name)));
    });

    it('a damaged copy is found, read again from the store, and repaired', async () => {
      const index = object('index', `an index ${kind}`);
      await other.put(index.name, index.bytes);
      const damaged: string[] = [];
      const reader = new CacheStore(store, root, { onDamaged: (name) => damaged.push(name) });
      await reader.get(index.name);
      const bytes = fs.readFileSync(cachedFile(index.name));
      bytes[3]! ^= 0x01;
      fs.writeFileSync(cachedFile(index.name), bytes);
      store.calls = [];
      assert.deepEqual(await reader.get(index.name), index.bytes);
      assert.deepEqual(store.calls, [`get ${index.name}`]);
      assert.deepEqual(damaged, [index.name]);
      assert.deepEqual(fs.readFileSync(cachedFile(index.name)), index.bytes);
      store.calls = [];
      assert.deepEqual(await reader.get(index.name), index.bytes);
      assert.deepEqual(store.calls, []);
    });

    it('deletion records and writer markers are never cached: every read goes to the store', async () => {
      const record = object(DELETIONS_DIR, `record ${kind}`);
      const marker = object(WRITERS_DIR, `marker ${kind}`);
      await cache.put(record.name, record.bytes);
      await cache.put(marker.name, marker.bytes);
      assert.deepEqual(await cache.get(record.name), record.bytes);
      assert.deepEqual(await cache.get(marker.name), marker.bytes);
      // Another process completes the record and ends its heartbeat.
      await other.delete(record.name);
      await other.delete(marker.name);
      await assert.rejects(cache.get(record.name), { kind: 'not-found' });
      await assert.rejects(cache.get(marker.name), { kind: 'not-found' });
      assert.deepEqual(await listNames(cache, DELETIONS_DIR), []);
      assert.deepEqual(await listNames(cache, WRITERS_DIR), []);
      for (const dir of [DELETIONS_DIR, WRITERS_DIR]) assert.ok(!fs.existsSync(path.join(root, id, dir)), `nothing of ${dir}/ in the cache`);
    });

    it('a tree pack read from its start is kept whole (one size request more) and served from the copy later', async () => {
      const trees = object('data', `tree blobs ${kind} `.repeat(200));
      await other.put(trees.name, trees.bytes);
      const extent = trees.bytes.length - 100;
      store.calls = [];
      assert.deepEqual(await cache.get(trees.name, { offset: 0, length: extent }, { metadata: true }), trees.bytes.subarray(0, extent));
      assert.deepEqual(store.calls, ['get config', `stat ${trees.name}`, `get ${trees.name}`]);
      assert.deepEqual(fs.readFileSync(cachedFile(trees.name)), trees.bytes);
      store.calls = [];
      const again = new CacheStore(store, root);
      assert.deepEqual(await again.get(trees.name, { offset: 0, length: extent }, { metadata: true }), trees.bytes.subarray(0, extent));
      assert.deepEqual(store.calls, ['get config']);
    });

    it('a pack bigger than a pack whose blobs end at the range can be is read as asked, and not kept', async () => {
      const big = object('data', `${kind} `.repeat(10_000));
      await other.put(big.name, big.bytes);
      const extent = 100;
      assert.ok(maxPackBytesFor(extent) < big.bytes.length);
      store.calls = [];
      assert.deepEqual(await cache.get(big.name, { offset: 0, length: extent }, { metadata: true }), big.bytes.subarray(0, extent));
      assert.deepEqual(store.calls, ['get config', `stat ${big.name}`, `get ${big.name} 0+${extent}`]);
      assert.ok(!fs.existsSync(cachedFile(big.name)));
    });
  });
}
