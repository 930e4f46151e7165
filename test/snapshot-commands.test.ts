// find, stats, tag, snapshots --latest/--group-by, restore --verify and generate, on real repositories
// (local, and tag on an S3 replica too: the rewrite must reach every replica).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { verifyRestoredFile } from '../src/engine/restore/verify.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { Repository } from '../src/repo/repository.ts';
import { openStore } from '../src/store/open-store.ts';
import { coffer, jsonLines, ok, PASSWORD, tempDir } from './helpers/cli.ts';
import { startS3Server } from './helpers/s3-server.ts';
import { seededBytes } from './helpers/tree.ts';

interface Snap {
  id: string;
  host: string;
  tags: string[];
  paths: string[];
  replaces?: string;
}

function snapshots(repo: string, env?: Record<string, string>): Snap[] {
  return jsonLines<Snap>(ok(['snapshots', '--repo', repo, '--json'], { env }).stdout);
}

/** Two hosts, two sources, a few snapshots each. */
function repoWithHistory(dir: string): { repo: string; a: string; b: string } {
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.mkdirSync(path.join(a, 'photos'), { recursive: true });
  fs.mkdirSync(b);
  fs.writeFileSync(path.join(a, 'photos/cat.JPG'), seededBytes('cat', 3 << 20));
  fs.writeFileSync(path.join(a, 'notes.txt'), 'notes');
  fs.writeFileSync(path.join(b, 'dog.jpg'), seededBytes('dog', 100_000));
  fs.utimesSync(path.join(b, 'dog.jpg'), new Date('2020-06-01T12:00:00Z'), new Date('2020-06-01T12:00:00Z'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--host', 'alpha', a]);
  ok(['backup', '--repo', repo, '--host', 'alpha', a]);
  ok(['backup', '--repo', repo, '--host', 'alpha', '--tag', 'daily', a]);
  ok(['backup', '--repo', repo, '--host', 'beta', b]);
  return { repo, a, b };
}

test('snapshots --latest N and --group-by', (t) => {
  const { repo } = repoWithHistory(tempDir(t));
  const all = snapshots(repo);
  const latest = jsonLines<Snap>(ok(['snapshots', '--repo', repo, '--latest', '1', '--json']).stdout);
  assert.deepEqual(latest.map((s) => s.id), [all[2]!.id, all[3]!.id], 'the newest of each host and paths');
  const groups = jsonLines(ok(['snapshots', '--repo', repo, '--group-by', 'host,tags', '--json']).stdout);
  assert.deepEqual(
    groups.map((g) => [g.type, g.key, (g.snapshots as Snap[]).length]),
    [
      ['group', { host: 'alpha', tags: [] }, 2],
      ['group', { host: 'alpha', tags: ['daily'] }, 1],
      ['group', { host: 'beta', tags: [] }, 1],
    ],
  );
  const text = ok(['snapshots', '--repo', repo, '--group-by', 'host', '--latest', '2']).stdout;
  assert.match(text, /^host alpha:$/m);
  assert.match(text, /^2 snapshots$/m);
  assert.match(coffer(['snapshots', '--repo', repo, '--group-by', 'hosts']).stderr, /^coffer: --group-by takes host, paths and tags/);
  assert.match(coffer(['snapshots', '--repo', repo, '--latest', 'x']).stderr, /^coffer: --latest takes a number/);
});

test('find: names and paths across snapshots, case, times, one snapshot, JSON', (t) => {
  const { repo, a, b } = repoWithHistory(tempDir(t));
  const all = snapshots(repo);
  const jpg = jsonLines(ok(['find', '--repo', repo, '*.jpg', '--json']).stdout);
  assert.deepEqual(jpg.filter((l) => l.type === 'match').map((l) => l.path), [`${b}/dog.jpg`], 'case matters by default');
  const any = jsonLines(ok(['find', '--repo', repo, '-i', '*.jpg', '--json']).stdout).filter((l) => l.type === 'match');
  assert.equal(any.length, 4, 'three snapshots of cat.JPG, one of dog.jpg');
  assert.equal(any[0]!.snapshot, all[3]!.id, 'newest snapshot first');
  const one = ok(['find', '--repo', repo, '-s', all[0]!.id.slice(0, 8), 'photos']).stdout;
  assert.match(one, new RegExp(`^found in snapshot ${all[0]!.id.slice(0, 8)} .*\\(alpha\\):\\n  ${a}/photos$`, 'm'));
  assert.match(one, /^1 match in 1 snapshot$/m);
  assert.match(ok(['find', '--repo', repo, '--host', 'beta', '--newest', '2021-01-01', '*']).stdout, /dog\.jpg/);
  assert.doesNotMatch(ok(['find', '--repo', repo, '--host', 'beta', '--oldest', '2021-01-01', '*.jpg']).stdout, /dog\.jpg/);
  assert.match(ok(['find', '--repo', repo, `${a}/*`, '--tag', 'daily']).stdout, /^2 matches in 1 snapshot$/m);
  assert.match(coffer(['find', '--repo', repo, '--oldest', 'yesterday-ish', 'x']).stderr, /^coffer: --oldest takes a date/);
});

test('stats: restore size, distinct contents, raw data and blobs', (t) => {
  const { repo } = repoWithHistory(tempDir(t));
  const stat = (mode: string, ...refs: string[]): Record<string, number> => jsonLines(ok(['stats', '--repo', repo, '--mode', mode, '--json', ...refs]).stdout)[0] as Record<string, number>;
  const restore = stat('restore-size');
  assert.equal(restore.snapshots, 4);
  assert.equal(restore.files, 3 * 2 + 1);
  assert.equal(restore.bytes, 3 * ((3 << 20) + 5) + 100_000);
  assert.equal(stat('restore-size', 'latest').files, 1);
  const contents = stat('files-by-contents');
  assert.deepEqual([contents.files, contents.bytes], [3, (3 << 20) + 5 + 100_000]);
  const raw = stat('raw-data');
  assert.ok(raw.storedBytes > 3 << 20 && raw.storedBytes < (3 << 20) + 200_000, `stored ${raw.storedBytes}`);
  assert.ok(raw.blobs >= 6, 'data blobs and trees');
  const blobs = stat('blobs-per-file');
  assert.equal(blobs.bytes, (3 << 20) + 5 + 100_000);
  assert.match(ok(['stats', '--repo', repo]).stdout, /^stats in restore-size mode of 4 snapshots:\n {2}files: 7, directories: \d+, size: 9\.\d+ MiB$/m);
  assert.match(coffer(['stats', '--repo', repo, '--mode', 'raw']).stderr, /^coffer: option '--mode <mode>' argument 'raw' is invalid/);
});

test('tag --add/--remove/--set rewrites snapshots on every replica; an interrupted rewrite is resolved', async (t) => {
  const dir = tempDir(t);
  const s3 = await startS3Server('tags');
  t.after(() => s3.stop());
  const bucket = `s3:${s3.endpoint}/${s3.bucket}/repo`;
  const env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
  const local = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'f'), 'f');
  const repos = ['--repo', local, '--repo', bucket];
  ok(['init', ...repos], { env });
  ok(['backup', ...repos, '--tag', 'old', src], { env });
  const [before] = snapshots(local);

  const added = ok(['tag', ...repos, '--add', 'keep,monthly', 'latest'], { env }).stdout;
  assert.match(added, /changed the tags of 1 of 1 snapshot$/m);
  for (const r of [local, bucket]) {
    const list = snapshots(r, env);
    assert.equal(list.length, 1, `${r}: the old snapshot is gone`);
    assert.deepEqual(list[0]!.tags, ['keep', 'monthly', 'old']);
    assert.equal(list[0]!.replaces, before!.id);
  }
  ok(['tag', ...repos, '--remove', 'old', '--remove', 'monthly'], { env });
  assert.deepEqual(snapshots(bucket, env)[0]!.tags, ['keep']);
  ok(['tag', ...repos, '--set', 'a,b', '--host', snapshots(local)[0]!.host], { env });
  assert.deepEqual(snapshots(local)[0]!.tags, ['a', 'b']);
  assert.match(ok(['tag', ...repos, '--add', 'a'], { env }).stdout, /changed the tags of 0 of 1 snapshot$/m, 'nothing to change, nothing written');
  assert.match(ok(['check', ...repos], { env }).stdout, /no errors were found/);

  // A crash between writing the new snapshot and deleting the old one leaves both: the new one counts.
  const [current] = snapshots(local);
  const stash = path.join(dir, 'stash');
  fs.copyFileSync(path.join(local, 'snapshots', current!.id), stash);
  ok(['tag', '--repo', local, '--add', 'c']);
  fs.copyFileSync(stash, path.join(local, 'snapshots', current!.id));
  assert.equal(fs.readdirSync(path.join(local, 'snapshots')).length, 2);
  const shown = snapshots(local);
  assert.deepEqual(shown.map((s) => s.tags), [['a', 'b', 'c']], 'the replaced snapshot is hidden');
  ok(['tag', '--repo', local, '--add', 'd']);
  assert.equal(fs.readdirSync(path.join(local, 'snapshots')).length, 1, 'the next tag run removes the leftover');
  assert.deepEqual(snapshots(local)[0]!.tags, ['a', 'b', 'c', 'd']);

  assert.match(coffer(['tag', '--repo', local, 'latest']).stderr, /^coffer: say what to change: --add, --remove or --set/);
  assert.match(coffer(['tag', '--repo', local, '--set', 'x', '--add', 'y']).stderr, /^coffer: --set replaces every tag/);
});

test('restore --verify reads every file back; a file that differs is named', async (t) => {
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'big'), seededBytes('verify', 5 << 20));
  fs.writeFileSync(path.join(src, 'small'), 'small');
  fs.writeFileSync(path.join(src, 'empty'), '');
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, src]);
  const out = path.join(dir, 'out');
  const r = ok(['restore', '--repo', repo, `latest:${src}`, '--target', out, '--verify']);
  assert.match(r.stdout, /^verified 3 files: all equal to the snapshot$/m);
  const json = jsonLines(ok(['restore', '--repo', repo, `latest:${src}`, '--target', path.join(dir, 'out2'), '--verify', '--json']).stdout);
  assert.equal(json.find((l) => l.type === 'summary')!.verified, 3);

  // The check itself, against a file changed after the restore.
  const big = path.join(out, 'big');
  const bytes = fs.readFileSync(big);
  bytes[3 << 20]! ^= 1;
  fs.writeFileSync(big, bytes);
  const opened = await Repository.open([openStore(repo)], PASSWORD);
  try {
    await opened.loadIndex();
    const [stored] = await opened.listSnapshots();
    const view = await SnapshotView.open(opened, stored!.snapshot);
    const node = (await view.find(`${src}/big`)).node!;
    assert.match(verifyRestoredFile(Buffer.from(big), node, opened.index, opened.idKey) ?? '', /^differs from the snapshot in bytes \d+–\d+$/);
    fs.appendFileSync(path.join(out, 'small'), '!');
    assert.equal(verifyRestoredFile(Buffer.from(path.join(out, 'small')), (await view.find(`${src}/small`)).node!, opened.index, opened.idKey), 'is 6 bytes on disk, the snapshot says 5');
  } finally {
    await opened.close();
  }
});

test('generate: completions that the shells accept, and a man page', (t) => {
  const dir = tempDir(t);
  const bash = ok(['generate', '--bash-completion']).stdout;
  const script = `${bash}\nCOMP_WORDS=(coffer snap); COMP_CWORD=1; _coffer; echo "\${COMPREPLY[@]}"\nCOMP_WORDS=(coffer backup --exclude-c); COMP_CWORD=2; _coffer; echo "\${COMPREPLY[@]}"\n`;
  assert.equal(execFileSync('bash', ['-c', script], { encoding: 'utf8' }), 'snapshots\n--exclude-caches\n');
  const files = { zsh: path.join(dir, '_coffer'), fish: path.join(dir, 'coffer.fish'), man: path.join(dir, 'coffer.1') };
  const r = ok(['generate', '--zsh-completion', files.zsh, '--fish-completion', files.fish, '--man', files.man]);
  assert.equal(r.stdout, '');
  assert.match(fs.readFileSync(files.man, 'utf8'), /^\.TH COFFER 1 /);
  assert.match(fs.readFileSync(files.man, 'utf8'), /^\.B coffer find/m);
  for (const [shell, file] of [['zsh', files.zsh], ['fish', files.fish]] as const) {
    if (spawnable(shell)) execFileSync(shell, ['-n', file]);
    else t.diagnostic(`${shell} is not installed: its script was not syntax-checked`);
  }
  assert.match(coffer(['generate']).stderr, /^coffer: say what to generate/);
  assert.match(coffer(['generate', '--man', '--zsh-completion']).stderr, /^coffer: only one of them can go to stdout/);
});

function spawnable(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
