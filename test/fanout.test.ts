// One read, many destinations, through the real CLI: a local disk, a local disk behind a 5 MB/s limit,
// and S3 (s3rver) get byte-identical replicas; the fast ones commit first; a lagging or broken
// replica is repaired by sync or by the next backup; reads fall back to a good replica.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { coffer, cofferAsync, jsonLines, MAIN, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { seededBytes } from './helpers/tree.ts';
import { S3Store } from '../src/store/s3.ts';
import { REPOSITORY_DIRS } from '../src/engine/replicas.ts';

let s3: S3Server;
let s3Env: Record<string, string>;
before(async () => {
  s3 = await startS3Server('fanout');
  s3Env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
  // For the stores this test opens itself to compare replicas.
  Object.assign(process.env, s3Env);
});
after(() => s3?.stop());

function s3Location(prefix: string): string {
  return `s3:${s3.endpoint}/${s3.bucket}/${prefix}`;
}

/** name → sha256 of every object of a replica (read through the store, whatever its kind). */
async function digests(location: string): Promise<Map<string, string>> {
  const store = location.startsWith('s3:') ? new S3Store(location) : new (await import('../src/store/local.ts')).LocalStore(location);
  const out = new Map<string, string>();
  for (const dir of REPOSITORY_DIRS) for await (const o of store.list(dir)) out.set(o.name, crypto.hash('sha256', await store.get(o.name)));
  out.set('config', crypto.hash('sha256', await store.get('config')));
  await store.close();
  return out;
}

function sourceOf(dir: string, files: number, size: number, seed: string): string {
  const source = path.join(dir, 'source');
  fs.mkdirSync(source, { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(source, `f${i}.bin`), seededBytes(`${seed}${i}`, size));
  return source;
}

test('three destinations get byte-identical replicas; the fast ones commit while the slow one still uploads', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const source = sourceOf(dir, 6, 5 << 20, 'three');
  const fast = path.join(dir, 'ssd');
  const slow = path.join(dir, 'nas');
  const bucket = s3Location('three');
  const repos = ['--repo', fast, '--repo', slow, '--repo', bucket];
  ok(['init', ...repos], { env: s3Env });
  const run = cofferAsync(['backup', ...repos, '--limit-upload', `${slow}=5M`, '--json', source], { env: s3Env });
  // When the local disk reports its commit, the throttled one is still far from done.
  let slowHadSnapshotAtFastCommit: boolean | undefined;
  let sawSlowUploading = false;
  const watch = setInterval(() => {
    const lines = jsonLines(run.output().stdout.split('\n').slice(0, -1).join('\n'));
    for (const status of lines.filter((l) => l.type === 'status')) {
      const d = (status.destinations as { location: string; state: string }[]).find((x) => x.location === slow);
      if (d?.state === 'uploading') sawSlowUploading = true;
    }
    if (slowHadSnapshotAtFastCommit === undefined && lines.some((l) => l.type === 'committed' && l.location === fast)) {
      slowHadSnapshotAtFastCommit = fs.existsSync(path.join(slow, 'snapshots')) && fs.readdirSync(path.join(slow, 'snapshots')).length > 0;
    }
  }, 20);
  const r = await run.done;
  clearInterval(watch);
  assert.equal(r.code, 0, r.stderr);
  const committed = jsonLines(r.stdout).filter((l) => l.type === 'committed').map((l) => l.location);
  assert.equal(committed[committed.length - 1], slow, 'the throttled destination commits last');
  assert.equal(slowHadSnapshotAtFastCommit, false, 'the fast destination committed before the slow one had its snapshot');
  assert.ok(sawSlowUploading, 'progress showed the slow destination uploading');
  const summary = summaryOf(r.stdout);
  assert.deepEqual((summary.destinations as { committed: boolean }[]).map((d) => d.committed), [true, true, true]);

  const [a, b, c] = await Promise.all([digests(fast), digests(slow), digests(bucket)]);
  assert.ok(a.size > 4);
  assert.deepEqual(b, a, 'the throttled replica is byte-identical');
  assert.deepEqual(c, a, 'the S3 replica is byte-identical');
  assert.match(ok(['check', '--replicas', ...repos], { env: s3Env }).stdout, /all 3 replicas hold the same/);
  for (const only of [fast, slow, bucket]) {
    const out = path.join(dir, `restore-${crypto.randomBytes(3).toString('hex')}`);
    ok(['restore', '--repo', only, 'latest', '--target', out], { env: s3Env });
    assert.ok(fs.readFileSync(path.join(out, source, 'f5.bin')).equals(fs.readFileSync(path.join(source, 'f5.bin'))));
  }
});

test('a destination that is unreachable or refuses us does not stop the others; sync and the next backup repair it', { timeout: 120_000 }, (t) => {
  const dir = tempDir(t);
  const source = sourceOf(dir, 3, 2 << 20, 'offline');
  const good = path.join(dir, 'good');
  const other = path.join(dir, 'other');
  const bucket = s3Location('refuses');
  ok(['init', '--repo', good, '--repo', other, '--repo', bucket], { env: s3Env });
  ok(['backup', '--repo', good, '--repo', other, '--repo', bucket, source], { env: s3Env });

  // Wrong credentials: a permanent error, not retried; the other destinations commit; exit code 4.
  fs.appendFileSync(path.join(source, 'f0.bin'), 'changed');
  const refused = coffer(['backup', '--repo', good, '--repo', other, '--repo', bucket, '--json', source], { env: { ...s3Env, AWS_ACCESS_KEY_ID: 'WRONG' } });
  assert.equal(refused.code, 4, refused.stderr);
  const outcome = summaryOf(refused.stdout).destinations as { location: string; committed: boolean; error?: string }[];
  assert.deepEqual(outcome.filter((o) => o.committed).map((o) => o.location).sort(), [good, other].sort());
  assert.match(outcome.find((o) => !o.committed)!.error!, /denied|access/i);

  // The bucket now lacks a snapshot and its packs: check names them, sync copies them.
  const mismatch = coffer(['check', '--replicas', '--repo', good, '--repo', bucket], { env: s3Env });
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stdout, new RegExp(`missing: snapshots/[0-9a-f]{64} on ${bucket.replace(/[/.]/g, '\\$&')}`));
  assert.match(ok(['sync', '--from', good, '--to', bucket], { env: s3Env }).stdout, /copied [1-9]\d* objects/);
  assert.match(ok(['check', '--replicas', '--repo', good, '--repo', bucket], { env: s3Env }).stdout, /all 2 replicas hold the same/);

  // A replica left behind by a failed run is brought up to date by the next backup.
  fs.rmSync(other, { recursive: true });
  ok(['replica', 'add', '--repo', good, other]);
  fs.rmSync(path.join(other, 'snapshots'), { recursive: true });
  fs.appendFileSync(path.join(source, 'f1.bin'), 'changed again');
  const next = summaryOf(ok(['backup', '--repo', good, '--repo', other, '--repo', bucket, '--json', source], { env: s3Env }).stdout);
  assert.equal((next.destinations as { committed: boolean }[]).every((d) => d.committed), true);
  assert.match(ok(['check', '--replicas', '--repo', good, '--repo', other, '--repo', bucket], { env: s3Env }).stdout, /all 3 replicas hold the same/);
});

test('restore falls back to another replica when a pack is missing or damaged, and says so', (t) => {
  const dir = tempDir(t);
  const source = sourceOf(dir, 4, 3 << 20, 'fallback');
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  ok(['init', '--repo', a, '--repo', b]);
  ok(['backup', '--repo', a, '--repo', b, source]);
  const packs = fs.readdirSync(path.join(a, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(a, path.join(e.parentPath, e.name)));
  const [big, second] = packs.sort((x, y) => fs.statSync(path.join(a, y)).size - fs.statSync(path.join(a, x)).size);
  // Each replica is broken somewhere else, so whichever is read first, one read must fall back.
  const damaged = fs.readFileSync(path.join(a, big!));
  damaged[100]! ^= 0x55;
  fs.writeFileSync(path.join(a, big!), damaged);
  fs.rmSync(path.join(b, second!));

  const out = path.join(dir, 'out');
  const r = ok(['restore', '--repo', a, '--repo', b, 'latest', '--target', out]);
  assert.match(r.stderr, /could not be read from \S+ \(.*\); read it from \S+/);
  for (let i = 0; i < 4; i++) assert.ok(fs.readFileSync(path.join(out, source, `f${i}.bin`)).equals(fs.readFileSync(path.join(source, `f${i}.bin`))));
  for (const only of [a, b]) assert.equal(coffer(['restore', '--repo', only, 'latest', '--target', path.join(dir, `alone-${path.basename(only)}`)]).code, 1, `${only} alone cannot restore everything`);
  const check = coffer(['check', '--repo', a, '--read-data']);
  assert.match(check.stdout, new RegExp(`pack ${big}: blob 0 .* fails authentication`));
  const both = coffer(['check', '--repo', a, '--repo', b, '--read-data']);
  assert.equal(both.code, 1);
  assert.match(both.stdout, new RegExp(`pack ${big} on \\S+/a: blob 0 .* fails authentication`), 'every replica is read');
  assert.match(both.stdout, new RegExp(`pack ${second} is listed in the index but missing from \\S+/b`));
});

test('replica add refuses a location that fails the test-write, and fills one that passes', (t) => {
  const dir = tempDir(t);
  const source = sourceOf(dir, 2, 1 << 20, 'replica');
  const a = path.join(dir, 'a');
  ok(['init', '--repo', a]);
  ok(['backup', '--repo', a, source]);
  const blocker = path.join(dir, 'a-file');
  fs.writeFileSync(blocker, 'not a directory');
  const refused = coffer(['replica', 'add', '--repo', a, path.join(blocker, 'repo')]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^coffer: refusing .*a-file\/repo: the test-write failed/);
  const b = path.join(dir, 'b');
  assert.match(ok(['replica', 'add', '--repo', a, b]).stdout, /test-write to .* passed/);
  assert.match(ok(['check', '--replicas', '--repo', a, '--repo', b]).stdout, /all 2 replicas hold the same/);
  ok(['restore', '--repo', b, 'latest', '--target', path.join(dir, 'out')]);
  const other = path.join(dir, 'other');
  ok(['init', '--repo', other]);
  assert.match(coffer(['sync', '--from', a, '--to', other]).stdout, /holds a different repository/);
});

test('a terminal shows one progress line per destination, with state, speed and the fastest marked', (t) => {
  const dir = tempDir(t);
  const source = sourceOf(dir, 6, 4 << 20, 'bars');
  const fast = path.join(dir, 'fast');
  const slow = path.join(dir, 'slow');
  ok(['init', '--repo', fast, '--repo', slow]);
  const r = spawnSync('script', ['-qec', `stty cols 250; ${process.execPath} ${MAIN} backup --repo ${fast} --repo ${slow} --limit-upload ${slow}=4M ${source}`, '/dev/null'], {
    env: { ...process.env, COFFER_PASSWORD: PASSWORD, COFFER_DATA_DIR: path.join(dir, 'state'), COLUMNS: '250' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, new RegExp(`${slow.replace(/[/.]/g, '\\$&')} +\\[[#.]{16}\\] \\d+/\\d+ objects( \\(\\d+ in flight\\))? [\\d.]+ \\S+/[\\d.]+ \\S+ [\\d.]+ \\S+/s( ETA \\d+:\\d\\d)? uploading`));
  assert.match(r.stdout, /\[#{16}\] .* (done|waiting)/, 'the fast destination finished while the slow one uploaded');
  assert.match(r.stdout, /\(fastest\)/);
});

test('check falls back to another replica for a damaged tree pack, and says so', (t) => {
  const dir = tempDir(t);
  const source = sourceOf(dir, 2, 1 << 20, 'check-fallback');
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  ok(['init', '--repo', a, '--repo', b]);
  ok(['backup', '--repo', a, '--repo', b, source]);
  // The smallest pack holds the trees; damage it on both sides' first copy: a.
  const packs = fs.readdirSync(path.join(a, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  const treePack = packs.sort((x, y) => fs.statSync(x).size - fs.statSync(y).size)[0]!;
  const bytes = fs.readFileSync(treePack);
  bytes[5]! ^= 1;
  fs.writeFileSync(treePack, bytes);
  const both = ok(['check', '--repo', a, '--repo', b]);
  assert.match(both.stdout, /no errors were found/);
  assert.match(both.stderr, /could not be read from \S+\/a .*read it from \S+\/b/);
  const alone = coffer(['check', '--repo', a]);
  assert.equal(alone.code, 1);
  assert.match(alone.stdout, /tree [0-9a-f]{16}: .*fails authentication/);
});

/** Bytes in a replica's data directory: its packs. */
function packBytes(repo: string): number {
  const data = path.join(repo, 'data');
  if (!fs.existsSync(data)) return 0;
  let total = 0;
  for (const entry of fs.readdirSync(data, { withFileTypes: true, recursive: true })) if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  return total;
}

// Regression (issue 13): Ctrl-C of a backup whose throttled destination (--limit-upload SLOW=64K) was
// still uploading took 248 s to exit: the throttle's wait for bandwidth did not hear the interrupt.
test('Ctrl-C stops a backup whose throttled destination waits for bandwidth within seconds; both replicas stay sound', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const source = sourceOf(dir, 3, 2 << 20, 'ctrl-c');
  const fast = path.join(dir, 'ssd');
  const slow = path.join(dir, 'nas');
  ok(['init', '--repo', fast, '--repo', slow]);
  const run = cofferAsync(['backup', '--repo', fast, '--repo', slow, '--limit-upload', `${slow}=64K`, source]);
  // Once the fast replica has the pack, the slow one's copy waits for its share: 6 MiB at 64 KiB/s is over 90 s.
  const deadline = Date.now() + 120_000;
  while (packBytes(fast) < 6 << 20) {
    assert.ok(Date.now() < deadline, `the fast replica never got the pack: ${run.output().stderr}`);
    assert.equal(run.child.exitCode, null, `the backup ended before the test interrupted it: ${run.output().stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const interrupted = performance.now();
  run.child.kill('SIGINT');
  const r = await run.done;
  const seconds = (performance.now() - interrupted) / 1000;
  t.diagnostic(`exited ${r.code} ${seconds.toFixed(1)} s after Ctrl-C`);
  assert.equal(r.code, 130, r.stderr);
  // Generous for a loaded machine, and far below the slow share's minute and a half.
  assert.ok(seconds < 20, `exited ${seconds.toFixed(1)} s after Ctrl-C`);
  // Nothing half-written under a final name: whatever the slow replica got is the fast one's object, byte for byte.
  const [a, b] = await Promise.all([digests(fast), digests(slow)]);
  for (const [name, digest] of b) assert.equal(digest, a.get(name), `${name} on the slow replica is the fast one's`);
  ok(['check', '--repo', fast]);
  ok(['check', '--repo', slow]);
});
