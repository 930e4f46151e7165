// repair index, repair snapshots and copy through the CLI, on local, S3 (s3rver) and SFTP (sshd) stores.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { coffer, jsonLines, ok, summaryOf, tempDir } from './helpers/cli.ts';
import { startRemotes, type Remotes } from './helpers/remotes.ts';
import { seededBytes } from './helpers/tree.ts';

let remotes: Remotes;
before(async () => {
  remotes = await startRemotes();
});
after(() => remotes?.stop());

function makeSource(dir: string): string {
  const source = path.join(dir, 'source');
  fs.mkdirSync(path.join(source, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(source, 'big.bin'), seededBytes('big', 3 << 20));
  fs.writeFileSync(path.join(source, 'docs', 'note.txt'), 'a note\n'.repeat(1000));
  fs.writeFileSync(path.join(source, 'small'), 'small');
  return source;
}

async function remove(location: string, prefix: string, filter: (name: string, size: number) => boolean = () => true): Promise<string[]> {
  const store = remotes.open(location);
  const removed: string[] = [];
  for await (const o of store.list(prefix)) {
    if (!filter(o.name, o.size)) continue;
    await store.delete(o.name);
    removed.push(o.name);
  }
  await store.close();
  return removed;
}

test('repair index rebuilds the index of local, S3 and SFTP replicas from the packs themselves', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const env = remotes.env;
  const locations = [remotes.location('local', dir), remotes.location('s3', dir), remotes.location('sftp', dir)];
  const repos = locations.flatMap((l) => ['--repo', l]);
  const source = makeSource(dir);
  ok(['init', ...repos], { env });
  ok(['backup', ...repos, source], { env });
  for (const l of locations) assert.ok((await remove(l, 'index')).length > 0);
  const broken = coffer(['check', ...repos], { env });
  assert.equal(broken.code, 1);
  assert.match(broken.stdout, /is not in the index/);

  const r = summaryOf(ok(['repair', 'index', ...repos, '--json'], { env }).stdout);
  assert.ok((r.packs as number) >= 2, JSON.stringify(r));
  assert.deepEqual(r.damaged, []);
  assert.match(ok(['check', ...repos, '--read-data'], { env }).stdout, /no errors were found/);
  assert.match(ok(['check', '--replicas', ...repos], { env }).stdout, /all 3 replicas hold the same/);
  for (const l of locations) {
    const out = path.join(dir, `out-${locations.indexOf(l)}`);
    ok(['restore', '--repo', l, 'latest', '--target', out], { env });
    assert.ok(fs.readFileSync(path.join(out, source, 'big.bin')).equals(seededBytes('big', 3 << 20)));
  }
});

test('repair snapshots: a lost pack truncates and marks the files that need it, the originals go only with --forget', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = makeSource(dir);
  ok(['init', '--repo', repo]);
  // The small files first, so that their data is in a pack of its own whatever order the chunk workers finish in.
  const docs = summaryOf(ok(['backup', '--repo', repo, '--json', path.join(source, 'docs'), path.join(source, 'small')]).stdout).snapshotId as string;
  const original = summaryOf(ok(['backup', '--repo', repo, '--json', source]).stdout).snapshotId as string;
  ok(['forget', '--repo', repo, docs]);
  // The data pack of big.bin is lost on the only replica.
  const lost = await remove(repo, 'data', (_name, size) => size > 1 << 20);
  assert.equal(lost.length, 1);
  assert.equal(coffer(['check', '--repo', repo]).code, 1);

  const dry = ok(['repair', 'snapshots', '--repo', repo, '--dry-run']);
  assert.match(dry.stdout, /truncated \/.*\/source\/big\.bin: chunk 1 of \d+ is lost \(its pack data\/.* is missing\); 0 of 3145728 bytes kept, renamed big\.bin\.truncated/);
  assert.match(dry.stdout, /would be repaired \(dry run: nothing was changed\)/);
  assert.equal(jsonLines(ok(['snapshots', '--repo', repo, '--json']).stdout).filter((l) => l.type === 'snapshot').length, 1);

  const lines = jsonLines(ok(['repair', 'snapshots', '--repo', repo, '--json']).stdout);
  const repaired = lines.find((l) => l.type === 'snapshot') as { id: string; repaired: string; paths: { path: string; action: string }[] };
  assert.equal(repaired.id, original);
  assert.deepEqual(repaired.paths.map((p) => [p.action, p.path]), [['truncated', `${source}/big.bin`]]);
  const snapshots = jsonLines(ok(['snapshots', '--repo', repo, '--json']).stdout).filter((l) => l.type === 'snapshot') as { id: string; tags: string[]; original?: string }[];
  assert.deepEqual(snapshots.map((s) => s.id).sort(), [original, repaired.repaired].sort(), 'the original is kept without --forget');
  assert.deepEqual(snapshots.find((s) => s.id === repaired.repaired)!.tags, ['repaired']);
  assert.equal(snapshots.find((s) => s.id === repaired.repaired)!.original, original);

  const out = path.join(dir, 'out');
  ok(['restore', '--repo', repo, repaired.repaired, '--target', out]);
  assert.equal(fs.statSync(path.join(out, source, 'big.bin.truncated')).size, 0);
  assert.equal(fs.readFileSync(path.join(out, source, 'docs/note.txt'), 'utf8'), 'a note\n'.repeat(1000));

  // --forget removes the broken original; prune drops what pointed at the lost pack; all is clean.
  const again = ok(['repair', 'snapshots', '--repo', repo, original, '--forget']);
  assert.match(again.stdout, /forgot 1 original snapshots/);
  ok(['prune', '--repo', repo]);
  assert.match(ok(['check', '--repo', repo, '--read-data']).stdout, /no errors were found/);
});

test('repair snapshots --read-data finds a damaged chunk; an unreadable directory is dropped', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = makeSource(dir);
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  // Flip a byte in the middle of the big data pack: its header is intact, one chunk is not.
  const store = remotes.open(repo);
  const packs: { name: string; size: number }[] = [];
  for await (const o of store.list('data')) packs.push(o);
  await store.close();
  const data = packs.find((p) => p.size > 1 << 20)!;
  const file = path.join(repo, data.name);
  const bytes = fs.readFileSync(file);
  bytes[1000]! ^= 0xff;
  fs.chmodSync(file, 0o600);
  fs.writeFileSync(file, bytes);
  assert.match(ok(['repair', 'snapshots', '--repo', repo]).stdout, /none needs repair/, 'without --read-data the index and the pack look fine');
  const r = ok(['repair', 'snapshots', '--repo', repo, '--read-data']);
  assert.match(r.stdout, /truncated \/.*\/source\/big\.bin: chunk 1 of \d+ is lost \(.*fails authentication/);

  // The tree pack is gone (with the small data pack beside it): the directories it held are dropped.
  for (const p of packs.filter((p) => p.size < 1 << 20)) fs.rmSync(path.join(repo, p.name));
  const lost = ok(['repair', 'snapshots', '--repo', repo]);
  assert.match(lost.stdout, /nothing can be read \(its root directory is lost\)/);
});

test('copy re-chunks and re-encrypts into a repository with other keys (S3 and SFTP replicas), storing only what it lacks', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const env = remotes.env;
  const from = path.join(dir, 'from');
  const to = [remotes.location('s3', dir), remotes.location('sftp', dir)];
  const toRepos = to.flatMap((l) => ['--to-repo', l]);
  const source = makeSource(dir);
  ok(['init', '--repo', from], { env: { COFFER_PASSWORD: 'source secret' } });
  ok(['init', ...to.flatMap((l) => ['--repo', l])], { env });
  const first = summaryOf(ok(['backup', '--repo', from, '--json', source], { env: { COFFER_PASSWORD: 'source secret' } }).stdout).snapshotId as string;
  fs.appendFileSync(path.join(source, 'small'), ' and more');
  ok(['backup', '--repo', from, source], { env: { COFFER_PASSWORD: 'source secret' } });
  // The target already holds its own backup of the same files: copying must not store them twice.
  ok(['backup', ...to.flatMap((l) => ['--repo', l]), source], { env });

  const bad = coffer(['copy', '--from-repo', from, ...toRepos], { env: { ...env, COFFER_FROM_PASSWORD: 'wrong' } });
  assert.equal(bad.code, 12);
  assert.match(bad.stderr, /wrong passphrase/);
  assert.match(coffer(['copy', ...toRepos], { env }).stderr, /give the source with --from-repo/);
  assert.match(coffer(['copy', '--from-repo', from, '--to-repo', from], { env }).stderr, /is both the source and the target/);

  const copy = summaryOf(ok(['copy', '--from-repo', from, ...toRepos, '--json'], { env: { ...env, COFFER_FROM_PASSWORD: 'source secret' } }).stdout);
  assert.equal(copy.copied, 2);
  assert.ok((copy.bytesAdded as number) < 100_000, `stored ${copy.bytesAdded} bytes although the target had the data`);
  const again = summaryOf(ok(['copy', '--from-repo', from, ...toRepos, '--json'], { env: { ...env, COFFER_FROM_PASSWORD: 'source secret' } }).stdout);
  assert.deepEqual([again.copied, again.skipped], [0, 2]);

  const snapshots = jsonLines(ok(['snapshots', ...to.flatMap((l) => ['--repo', l]), '--json'], { env }).stdout).filter((l) => l.type === 'snapshot') as { id: string; original?: string }[];
  assert.equal(snapshots.length, 3);
  const copiedFirst = snapshots.find((s) => s.original === first)!;
  assert.match(ok(['check', ...to.flatMap((l) => ['--repo', l]), '--read-data'], { env }).stdout, /no errors were found/);
  assert.match(ok(['check', '--replicas', ...to.flatMap((l) => ['--repo', l])], { env }).stdout, /all 2 replicas hold the same/);
  for (const l of to) {
    const out = path.join(dir, `out-${to.indexOf(l)}`);
    ok(['restore', '--repo', l, copiedFirst.id, '--target', out], { env });
    assert.ok(fs.readFileSync(path.join(out, source, 'big.bin')).equals(seededBytes('big', 3 << 20)));
    assert.equal(fs.readFileSync(path.join(out, source, 'small'), 'utf8'), 'small');
  }
});
