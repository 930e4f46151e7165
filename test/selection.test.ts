// What a backup takes: cache directories, marker files, big files, case-insensitive excludes, lists of
// paths; -v lists the files (with -n the files that would be), -q prints nothing but errors, and
// --force-reread reads unchanged files again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CONFIG_FILE, coffer, jsonLines, ok, summaryOf, tempDir } from './helpers/cli.ts';

function files(repo: string, snap = 'latest'): string[] {
  return jsonLines(ok(['ls', '--repo', repo, snap, '--json']).stdout)
    .filter((n) => n.nodeType === 'file')
    .map((n) => n.path as string)
    .sort();
}

function write(root: string, entries: Record<string, string | Buffer>): void {
  for (const [name, content] of Object.entries(entries)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), content);
  }
}

test('--exclude-caches, --exclude-if-present, --exclude-larger-than, --iexclude', (t) => {
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  write(src, {
    'keep.txt': 'keep',
    'cache/CACHEDIR.TAG': 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n',
    'cache/blob': 'cached',
    'not-a-cache/CACHEDIR.TAG': 'Signature: something else',
    'not-a-cache/data': 'data',
    'marked/.nobackup': '',
    'marked/inside': 'x',
    'tagged/MARK': 'yes please skip',
    'tagged/inside': 'x',
    'tagged-no/MARK': 'no',
    'big.iso': Buffer.alloc(1536 * 1024),
    'small.iso': Buffer.alloc(1024),
    'Photo.JPG': 'jpeg',
    'deep/ABC/x.txt': 'x',
  });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--exclude-caches', '--exclude-if-present', '.nobackup', '--exclude-if-present', 'MARK:yes', '--exclude-larger-than', '1M', '--iexclude', '*.jpg', '--iexclude', '/**/abc', src]);
  const rel = files(repo).map((p) => path.relative(src, p));
  assert.deepEqual(rel, ['keep.txt', 'not-a-cache/CACHEDIR.TAG', 'not-a-cache/data', 'small.iso', 'tagged-no/MARK']);
  // Without the options, everything is there (the same source, the next snapshot).
  ok(['backup', '--repo', repo, src]);
  assert.equal(files(repo).length, 14);
});

test('--files-from: paths listed in a file, with comments and relative paths; a missing list is one line', (t) => {
  const dir = tempDir(t);
  write(dir, { 'a/one.txt': '1', 'b/two.txt': '2', 'c/three.txt': '3' });
  const list = path.join(dir, 'list');
  fs.writeFileSync(list, `# what to back up\n${path.join(dir, 'a')}\n\nb/two.txt\n`);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--files-from', list], { cwd: dir });
  assert.deepEqual(files(repo), [path.join(dir, 'a/one.txt'), path.join(dir, 'b/two.txt')]);
  const [snap] = jsonLines<{ paths: string[] }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.deepEqual(snap.paths, [path.join(dir, 'a'), path.join(dir, 'b/two.txt')]);

  const missing = coffer(['backup', '--repo', repo, '--files-from', path.join(dir, 'nope')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^coffer: cannot read the --files-from list \S+nope: no such file\n$/);
  const size = coffer(['backup', '--repo', repo, '--exclude-larger-than', 'huge', dir]);
  assert.match(size.stderr, /^coffer: --exclude-larger-than takes a size such as 500M or 2G, not "huge"\n$/);
  const marker = coffer(['backup', '--repo', repo, '--exclude-if-present', 'a/b', dir]);
  assert.match(marker.stderr, /^coffer: --exclude-if-present takes a file name/);
});

test('-v lists the files backed up, -n -v those that would be, -q prints nothing; --force-reread reads everything again', (t) => {
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  write(src, { 'a.txt': 'a', 'b.txt': 'b' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);

  const dry = ok(['backup', '--repo', repo, '-n', '-v', src]).stdout;
  assert.match(dry, new RegExp(`^new +${src}/a.txt$`, 'm'));
  assert.match(dry, /would save snapshot/);
  assert.equal(jsonLines(ok(['snapshots', '--repo', repo, '--json']).stdout).length, 0);

  const first = ok(['backup', '--repo', repo, '-v', src]).stdout;
  assert.match(first, new RegExp(`^new +${src}/b.txt$`, 'm'));
  fs.writeFileSync(path.join(src, 'b.txt'), 'changed');
  const verboseJson = jsonLines(ok(['backup', '--repo', repo, '-v', '--json', src]).stdout).filter((l) => l.type === 'file');
  assert.deepEqual(verboseJson.map((l) => [path.basename(l.path as string), l.state]).sort(), [['a.txt', 'unmodified'], ['b.txt', 'changed']]);

  const quiet = coffer(['backup', '--repo', repo, '-q', src]);
  assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, '', '']);

  const reread = summaryOf(ok(['backup', '--repo', repo, '--force-reread', '--json', src]).stdout);
  assert.deepEqual([reread.filesUnmodified, reread.filesChanged, reread.dataBlobs], [0, 2, 0], 'read again, nothing new stored');
});

test('a plan carries the selection: excludeCaches, excludeIfPresent, excludeLargerThan, iexclude, filesFrom', (t) => {
  const dir = tempDir(t);
  write(dir, { 'src/keep': 'k', 'src/BIG': Buffer.alloc(3000), 'src/x.TMP': 't', 'src/c/CACHEDIR.TAG': 'Signature: 8a477f597d28d172789f06886806bc55', 'src/c/f': 'f', 'src/m/.skip': '', 'other/o': 'o' });
  const repo = path.join(dir, 'repo');
  const list = path.join(dir, 'list');
  fs.writeFileSync(list, `${path.join(dir, 'other')}\n`);
  ok(['init', '--repo', repo]);
  fs.writeFileSync(
    CONFIG_FILE,
    `plans:\n  sel:\n    repos: [${repo}]\n    paths: [${path.join(dir, 'src')}]\n    filesFrom: [${list}]\n    excludeCaches: true\n    excludeIfPresent: [.skip]\n    excludeLargerThan: 2K\n    iexclude: ["*.tmp"]\n`,
  );
  t.after(() => fs.rmSync(CONFIG_FILE, { force: true }));
  // Paths on the command line (or in --files-from) replace the plan's paths, as before.
  ok(['backup', '--plan', 'sel', path.join(dir, 'src')]);
  assert.deepEqual(files(repo), [path.join(dir, 'src/keep')]);
  ok(['backup', '--plan', 'sel']);
  assert.deepEqual(files(repo), [path.join(dir, 'other/o'), path.join(dir, 'src/keep')], 'the plan\'s paths and its filesFrom list');
});
