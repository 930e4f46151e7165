// Round trips through the real CLI on real files: everything a file system holds comes back exactly.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeRichTree, seededBytes, treeDifferences } from './helpers/tree.ts';
import { jsonLines, ok, okBytes, summaryOf, tempDir } from './helpers/cli.ts';

test('a rich tree survives backup and restore byte for byte and metadata for metadata', (t) => {
  const dir = tempDir(t);
  const source = makeRichTree(path.join(dir, 'source'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const summary = summaryOf(ok(['backup', '--repo', repo, '--json', source]).stdout);
  assert.equal(summary.warnings, 0);
  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repo, 'latest', '--target', target]);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), [], 'the snapshot holds the source at its full path');
  ok(['check', '--repo', repo, '--read-data']);
});

test('an unchanged tree is not read again and adds nothing; a changed file is found', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(source);
  for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`f${i}`, 50_000 + i));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const first = summaryOf(ok(['backup', '--repo', repo, '--json', source]).stdout);
  assert.equal(first.filesNew, 30);

  const second = summaryOf(ok(['backup', '--repo', repo, '--json', source]).stdout);
  assert.deepEqual([second.filesNew, second.filesChanged, second.filesUnmodified, second.dataBlobs], [0, 0, 30, 0]);
  // The source's tree is the same; only the directories above it (/tmp changes all the time) may be new.
  assert.ok((second.bytesAdded as number) < 2048, `added ${second.bytesAdded} bytes`);

  fs.appendFileSync(path.join(source, 'f3'), 'more');
  fs.writeFileSync(path.join(source, 'new'), 'new file');
  const third = summaryOf(ok(['backup', '--repo', repo, '--json', source]).stdout);
  assert.deepEqual([third.filesNew, third.filesChanged, third.filesUnmodified], [1, 1, 29]);

  const snapshots = jsonLines<{ id: string; parent?: string }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.equal(snapshots.length, 3);
  assert.equal(snapshots[2]!.parent, snapshots[1]!.id, 'the parent is found automatically');
  const diff = ok(['diff', '--repo', repo, snapshots[1]!.id, snapshots[2]!.id]).stdout;
  assert.ok(diff.split('\n').includes(`+    ${source}/new`), diff);
  assert.ok(diff.split('\n').includes(`M    ${source}/f3`), diff);
});

test('deduplication: the same data under another name costs only a tree', (t) => {
  const dir = tempDir(t);
  const a = path.join(dir, 'a');
  fs.mkdirSync(a);
  fs.writeFileSync(path.join(a, 'data'), seededBytes('dedup', 3 * 1024 * 1024));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, a]);
  const b = path.join(dir, 'b');
  fs.mkdirSync(b);
  fs.copyFileSync(path.join(a, 'data'), path.join(b, 'copy'));
  const summary = summaryOf(ok(['backup', '--repo', repo, '--json', b]).stdout);
  assert.equal(summary.dataBlobs, 0);
  assert.ok((summary.bytesAdded as number) < 4096, `added ${summary.bytesAdded} bytes`);
});

test('restore of a sub-tree, of one file, and with --include', (t) => {
  const dir = tempDir(t);
  const source = makeRichTree(path.join(dir, 'source'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);

  const sub = path.join(dir, 'sub');
  ok(['restore', '--repo', repo, `latest:${source}/docs`, '--target', sub]);
  assert.deepEqual(treeDifferences(path.join(source, 'docs'), sub), []);

  const one = path.join(dir, 'one');
  ok(['restore', '--repo', repo, `latest:${source}/docs/readme.txt`, '--target', one]);
  assert.deepEqual(fs.readdirSync(one), ['readme.txt']);
  assert.equal(fs.readFileSync(path.join(one, 'readme.txt'), 'utf8'), fs.readFileSync(path.join(source, 'docs/readme.txt'), 'utf8'));

  const inc = path.join(dir, 'inc');
  ok(['restore', '--repo', repo, 'latest', '--target', inc, '--include', '*.bin', '--include', `${source}/docs/deep`]);
  const restored = jsonLines(ok(['ls', '--repo', repo, 'latest', '--json']).stdout).length;
  assert.ok(restored > 10);
  assert.deepEqual(fs.readdirSync(path.join(inc, source)).sort(), ['big.bin', 'docs']);
  assert.deepEqual(fs.readdirSync(path.join(inc, source, 'docs')), ['deep']);
  assert.ok(fs.readFileSync(path.join(inc, source, 'big.bin')).equals(fs.readFileSync(path.join(source, 'big.bin'))));
});

test('dump writes a file to stdout and a directory as tar', (t) => {
  const dir = tempDir(t);
  const source = makeRichTree(path.join(dir, 'source'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  const file = okBytes(['dump', '--repo', repo, 'latest', `${source}/big.bin`]);
  assert.ok(file.equals(fs.readFileSync(path.join(source, 'big.bin'))));
  const tarFile = path.join(dir, 'docs.tar');
  fs.writeFileSync(tarFile, okBytes(['dump', '--repo', repo, 'latest', `${source}/docs`]));
  const out = path.join(dir, 'untarred');
  fs.mkdirSync(out);
  execFileSync('tar', ['-xf', tarFile, '-C', out]);
  assert.equal(fs.readFileSync(path.join(out, 'docs/readme.txt'), 'utf8'), fs.readFileSync(path.join(source, 'docs/readme.txt'), 'utf8'));
  assert.equal(fs.statSync(path.join(out, 'docs/hard-2')).size, 20);
});
