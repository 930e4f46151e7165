// The local cache of remote repositories (src/store/cache.ts): what it keeps, that a copy is served only
// when it is exactly the object its name says, that copies of deleted objects go, and that several
// processes can share one cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CacheStore, defaultCacheRoot } from '../src/store/cache.ts';
import { LocalStore } from '../src/store/local.ts';
import { packName, type ByteRange, type ObjectHint, type Store } from '../src/store/store.ts';
import { MemoryStore } from './helpers/memory-store.ts';

/** A config that decodeConfig accepts, with a given repository id. */
function configBytes(id = crypto.randomBytes(32).toString('hex')): Buffer {
  const config = { format: 'coffer', version: 1, id, created: '2026-01-01T00:00:00.000Z', chunker: { algorithm: 'fastcdc-gear32', min: 524288, avg: 1048576, max: 8388608 } };
  return Buffer.from(JSON.stringify(config));
}

/** An object named by the SHA-256 of its bytes, as every repository object is. */
function object(dir: 'index' | 'snapshots' | 'data', content: string): { name: string; bytes: Buffer } {
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
