// The local cache of a remote repository through the real CLI, on s3rver: what a backup leaves in it,
// that reads through it give what the repository holds (also after a copy is damaged or an object is
// deleted behind its back), that two commands can fill one cache at once, and --no-cache.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { S3Store } from '../src/store/s3.ts';
import { coffer, cofferAsync, ok, tempDir } from './helpers/cli.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { treeDifferences } from './helpers/tree.ts';

let s3: S3Server;
let env: Record<string, string>;

before(async () => {
  s3 = await startS3Server('cache');
  env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
});

after(() => s3?.stop());

function files(dir: string): string[] {
  return fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort() : [];
}

function sha256File(file: string): string {
  return crypto.hash('sha256', fs.readFileSync(file), 'hex');
}

test('a remote repository through its local cache', async (t) => {
  const dir = tempDir(t);
  const cache = path.join(dir, 'cache');
  const repo = `s3:${s3.endpoint}/${s3.bucket}/repo`;
  const source = path.join(dir, 'source');
  for (let i = 0; i < 30; i++) {
    fs.mkdirSync(path.join(source, `dir-${i % 6}`, `sub-${i % 4}`), { recursive: true });
    fs.writeFileSync(path.join(source, `dir-${i % 6}`, `sub-${i % 4}`, `file-${i}.txt`), `content ${i}\n`.repeat(i * 10));
  }
  const run = (args: string[], cacheDir = cache) => ok(args, { env: { ...env, COFFER_CACHE_DIR: cacheDir } });
  run(['init', '--repo', repo]);
  run(['backup', '--repo', repo, source]);
  fs.writeFileSync(path.join(source, 'dir-0', 'new.txt'), 'second snapshot');
  run(['backup', '--repo', repo, source]);

  // A backup leaves what it wrote: index files, both snapshots, and the packs of trees (not data packs).
  const [repoId] = fs.readdirSync(cache).filter((f) => f !== 'CACHEDIR.TAG');
  const copies = path.join(cache, repoId!);
  assert.equal(files(path.join(copies, 'snapshots')).length, 2);
  assert.ok(files(path.join(copies, 'index')).length >= 2);
  const packs = files(path.join(copies, 'data'));
  assert.ok(packs.length >= 1);
  for (const f of [...packs.map((p) => path.join('data', p)), ...files(path.join(copies, 'index')).map((p) => path.join('index', p))]) {
    assert.equal(sha256File(path.join(copies, f)), path.basename(f), `${f} is the object its name says`);
  }

  const expected = run(['ls', '--repo', repo, 'latest', '--no-cache']).stdout;
  assert.equal(run(['ls', '--repo', repo, 'latest']).stdout, expected);

  // A damaged copy of a tree pack: found, read again from the bucket, and the listing is still right.
  const pack = path.join(copies, 'data', packs[0]!);
  const bytes = fs.readFileSync(pack);
  bytes[bytes.length >> 1]! ^= 0xff;
  fs.writeFileSync(pack, bytes);
  const repaired = run(['ls', '--repo', repo, 'latest']);
  assert.equal(repaired.stdout, expected);
  assert.match(repaired.stderr, /does not match its name; read data\/.* from the repository again/);
  assert.equal(sha256File(pack), path.basename(pack));

  // A snapshot deleted from the bucket behind the cache's back (as forget does) is gone from the listing,
  // and its copy goes too once it is older than a listing could have missed.
  const listed = JSON.parse(run(['snapshots', '--repo', repo, '--json']).stdout) as { id: string }[];
  const doomed = listed[0]!.id;
  const bucket = new S3Store(repo, { env });
  await bucket.delete(`snapshots/${doomed}`);
  await bucket.close();
  const copy = path.join(copies, 'snapshots', doomed);
  fs.utimesSync(copy, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
  const after = JSON.parse(run(['snapshots', '--repo', repo, '--json']).stdout) as { id: string }[];
  assert.deepEqual(after.map((s) => s.id), [listed[1]!.id]);
  assert.ok(!fs.existsSync(copy));

  // Two commands filling an empty cache at the same time.
  const shared = path.join(dir, 'shared-cache');
  const both = await Promise.all([0, 1].map(() => cofferAsync(['ls', '--repo', repo, 'latest'], { env: { ...env, COFFER_CACHE_DIR: shared } }).done));
  for (const r of both) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, expected);
  }
  assert.deepEqual(files(path.join(shared, repoId!, 'tmp')), []);

  // A restore through the cache brings back the source.
  const target = path.join(dir, 'restored');
  run(['restore', '--repo', repo, 'latest', '--target', target]);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);

  // --no-cache leaves no trace.
  const unused = path.join(dir, 'unused-cache');
  run(['snapshots', '--repo', repo, '--no-cache'], unused);
  run(['backup', '--repo', repo, '--no-cache', source], unused);
  assert.ok(!fs.existsSync(unused));
  // check reads the repository itself, never the cache.
  const checked = coffer(['check', '--repo', repo], { env: { ...env, COFFER_CACHE_DIR: unused } });
  assert.equal(checked.code, 0, checked.stderr);
  assert.ok(!fs.existsSync(unused));
});
