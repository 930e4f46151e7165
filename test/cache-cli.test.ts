// The local cache of a remote repository through the real CLI, on s3rver: what a backup leaves in it,
// how many requests it saves (counted by a proxy in front of s3rver), that reads through it give what
// the repository holds after a copy is damaged or another process forgot and pruned behind its back,
// that two commands can fill one cache at once, and --no-cache.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { S3Store } from '../src/store/s3.ts';
import { coffer, cofferAsync, jsonLines, ok, tempDir } from './helpers/cli.ts';
import { startLatencyProxy, type LatencyProxy } from './helpers/latency-proxy.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { treeDifferences } from './helpers/tree.ts';

let s3: S3Server;
let proxy: LatencyProxy;
let env: Record<string, string>;
let work: string;
let repo: string;
let source: string;
/** The cache every test uses unless it says otherwise; `copies` is its folder for the repository. */
let cache: string;
let copies: string;
/** `ls latest` as the repository says, read without the cache. */
let expected: string;

function files(dir: string): string[] {
  return fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort() : [];
}

function sha256File(file: string): string {
  return crypto.hash('sha256', fs.readFileSync(file), 'hex');
}

const run = (args: string[], cacheDir = cache) => ok(args, { env: { ...env, COFFER_CACHE_DIR: cacheDir } });

/** The objects of index/, snapshots/ and data/ a command read from the bucket (GETs through the proxy). */
function objectReads(): string[] {
  return proxy.requests().filter((r) => r.method === 'GET' && /\/repo\/(index|snapshots|data)\//.test(r.url)).map((r) => r.url);
}

before(async () => {
  s3 = await startS3Server('cache');
  proxy = await startLatencyProxy(s3.endpoint, 0);
  env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cache-cli-'));
  cache = path.join(work, 'cache');
  repo = `s3:${proxy.endpoint}/${s3.bucket}/repo`;
  source = path.join(work, 'source');
  for (let i = 0; i < 30; i++) {
    fs.mkdirSync(path.join(source, `dir-${i % 6}`, `sub-${i % 4}`), { recursive: true });
    fs.writeFileSync(path.join(source, `dir-${i % 6}`, `sub-${i % 4}`, `file-${i}.txt`), `content ${i}\n`.repeat(i * 10));
  }
  run(['init', '--repo', repo]);
  run(['backup', '--repo', repo, source]);
  fs.writeFileSync(path.join(source, 'dir-0', 'new.txt'), 'second snapshot');
  run(['backup', '--repo', repo, source]);
  const [repoId] = fs.readdirSync(cache).filter((f) => f !== 'CACHEDIR.TAG');
  copies = path.join(cache, repoId!);
});

after(async () => {
  await proxy?.close();
  await s3?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('a backup leaves its index files, snapshots and tree packs in the cache, each the object its name says', () => {
  assert.equal(files(path.join(copies, 'snapshots')).length, 2);
  assert.ok(files(path.join(copies, 'index')).length >= 2);
  const packs = files(path.join(copies, 'data'));
  assert.ok(packs.length >= 1);
  for (const f of [...packs.map((p) => path.join('data', p)), ...files(path.join(copies, 'index')).map((p) => path.join('index', p))]) {
    assert.equal(sha256File(path.join(copies, f)), path.basename(f), `${f} is the object its name says`);
  }
  assert.ok(fs.readFileSync(path.join(cache, 'CACHEDIR.TAG'), 'utf8').startsWith('Signature: 8a477f597d28d172789f06886806bc55'));
});

test('snapshots and ls through a warm cache read no index file, snapshot or tree pack from the bucket', (t) => {
  const counts: Record<string, { cached: number; uncached: number }> = {};
  for (const args of [['snapshots'], ['ls', 'latest']]) {
    proxy.reset();
    const direct = run([...args, '--repo', repo, '--no-cache']);
    const uncached = proxy.requests().length;
    assert.ok(objectReads().length > 0);
    proxy.reset();
    const through = run([...args, '--repo', repo]);
    assert.equal(through.stdout, direct.stdout);
    assert.deepEqual(objectReads(), [], `${args[0]} read nothing but listings, the config and the key`);
    counts[args[0]!] = { cached: proxy.requests().length, uncached };
    if (args[0] === 'ls') expected = direct.stdout;
    assert.ok(proxy.requests().length < uncached);
  }
  t.diagnostic(`requests with / without the cache: ${JSON.stringify(counts)}`);
});

test('a damaged copy of a tree pack is found, read again from the bucket, and repaired', () => {
  const pack = path.join(copies, 'data', files(path.join(copies, 'data'))[0]!);
  const bytes = fs.readFileSync(pack);
  bytes[bytes.length >> 1]! ^= 0xff;
  fs.writeFileSync(pack, bytes);
  const repaired = run(['ls', '--repo', repo, 'latest']);
  assert.equal(repaired.stdout, expected);
  assert.match(repaired.stderr, /does not match its name; read data\/.* from the repository again/);
  assert.equal(sha256File(pack), path.basename(pack));
});

test('two commands fill one empty cache at the same time', async () => {
  const shared = path.join(work, 'shared-cache');
  const both = await Promise.all([0, 1].map(() => cofferAsync(['ls', '--repo', repo, 'latest'], { env: { ...env, COFFER_CACHE_DIR: shared } }).done));
  for (const r of both) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, expected);
  }
  const sharedCopies = path.join(shared, path.basename(copies));
  assert.deepEqual(files(path.join(sharedCopies, 'tmp')), [], 'no half-written copy is left behind');
  for (const f of files(sharedCopies)) assert.equal(sha256File(path.join(sharedCopies, f)), path.basename(f));
});

test('--no-cache and --cache-dir; check and repair never read through the cache', (t) => {
  const unused = path.join(tempDir(t), 'unused-cache');
  run(['backup', '--repo', repo, '--no-cache', source], unused);
  assert.ok(!fs.existsSync(unused));
  for (const args of [['check'], ['repair', 'index']]) {
    const r = coffer([...args, '--repo', repo], { env: { ...env, COFFER_CACHE_DIR: unused } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(unused), `${args.join(' ')} left no cache`);
  }
  const chosen = path.join(tempDir(t), 'chosen');
  run(['snapshots', '--repo', repo, '--cache-dir', chosen], unused);
  assert.ok(!fs.existsSync(unused));
  assert.ok(files(chosen).some((f) => f.includes('snapshots/')));
});

test('snapshots forgotten and packs pruned by another process: the cache serves nothing stale', async (t) => {
  const before = jsonLines<{ type: string; id: string }>(run(['snapshots', '--repo', repo, '--json']).stdout).filter((l) => l.type === 'snapshot');
  assert.ok(before.length >= 3);
  const indexCopies = files(path.join(copies, 'index'));

  // Another machine, with a cache of its own, forgets all but the newest snapshot and prunes.
  const elsewhere = path.join(tempDir(t), 'elsewhere');
  run(['forget', '--repo', repo, '--keep-last', '1'], elsewhere);
  run(['prune', '--repo', repo, '--max-unused', '0'], elsewhere);

  const left = jsonLines<{ type: string; id: string }>(run(['snapshots', '--repo', repo, '--json']).stdout).filter((l) => l.type === 'snapshot');
  assert.deepEqual(left.map((s) => s.id), [before.at(-1)!.id]);
  const gone = coffer(['ls', '--repo', repo, before[0]!.id], { env: { ...env, COFFER_CACHE_DIR: cache } });
  assert.notEqual(gone.code, 0, 'a forgotten snapshot is not served from its copy');
  assert.match(gone.stderr, /^coffer: /m);
  const target = path.join(tempDir(t), 'restored');
  run(['restore', '--repo', repo, 'latest', '--target', target]);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);

  // Copies of what the bucket no longer holds go once they are older than a listing could have missed.
  const old = new Date(Date.now() - 3600_000);
  for (const f of files(copies)) fs.utimesSync(path.join(copies, f), old, old);
  // ls lists the snapshots (to find the latest) and the index files (to load them).
  run(['ls', '--repo', repo, 'latest']);
  assert.deepEqual(files(path.join(copies, 'snapshots')), [left[0]!.id]);
  assert.ok(indexCopies.some((f) => !files(path.join(copies, 'index')).includes(f)), 'copies of rewritten index files are gone');
  // ls loaded the index: copies of the packs prune deleted or repacked went with it.
  const bucket = new S3Store(`s3:${s3.endpoint}/${s3.bucket}/repo`, { env });
  const packsLeft = new Set<string>();
  for await (const o of bucket.list('data')) packsLeft.add(o.name);
  await bucket.close();
  const packCopies = files(path.join(copies, 'data')).map((f) => `data/${f}`);
  assert.ok(packCopies.length > 0);
  for (const pack of packCopies) assert.ok(packsLeft.has(pack), `the copy of ${pack} is of a pack the bucket still holds`);
  for (const dir of ['deletions', 'writers']) assert.ok(!fs.existsSync(path.join(copies, dir)), `nothing of ${dir}/ is cached`);
  for (const dir of ['deletions', 'writers']) assert.ok(!fs.existsSync(path.join(elsewhere, path.basename(copies), dir)));
});
