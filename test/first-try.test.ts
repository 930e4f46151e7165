// What broke a new user's first try (issue 9): re-includes, relative repositories in status, restore
// targets the system refuses, dump to a terminal, comma-separated tags. Runs with progress, exit codes
// and retries are in first-try-runs.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, environment, jsonLines, MAIN, ok, tempDir } from './helpers/cli.ts';
import { onTerminal } from './helpers/terminal.ts';
import { writeTree } from './helpers/tree.ts';

/** Everything below `dir` in the newest snapshot, relative to `dir`. */
function lsBelow(repo: string, dir: string): string[] {
  return jsonLines<{ path: string }>(ok(['ls', '--repo', repo, `latest:${dir}`, '--recursive', '--json']).stdout).map((n) => path.relative(dir, n.path));
}

test('bug 2: !PATTERN re-includes what an earlier exclude left out; a backup that excludes everything warns', (t) => {
  const dir = tempDir(t);
  const source = writeTree(path.join(dir, 'src'), { 'keep.bin': 'k', 'drop.bin': 'd', 'notes.txt': 'n', 'data/a.bin': 'a', 'data/keep.bin': 'k2' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--exclude', '*.bin', '--exclude', '!keep.bin', source]);
  assert.deepEqual(lsBelow(repo, source).sort(), ['data', 'data/keep.bin', 'keep.bin', 'notes.txt']);

  // The last matching pattern decides: a later exclude takes a re-included file out again.
  ok(['backup', '--repo', repo, '--exclude', '*.bin', '--exclude', '!keep.bin', '--exclude', 'data/keep.bin', source]);
  assert.deepEqual(lsBelow(repo, source).filter((p) => p.endsWith('.bin')), ['keep.bin']);

  const empty = ok(['backup', '--repo', repo, '--exclude', '*', source]);
  assert.match(empty.stderr, /^warning: every file matched an exclude pattern: the snapshot holds no files/m);
  const all = ok(['backup', '--repo', repo, '--exclude', '*.bin', path.join(source, 'keep.bin')]);
  assert.match(all.stderr, /every file matched an exclude pattern/, 'a source that is excluded itself is left out, as restic does');
});

test('bug 5: a relative --repo is one destination with its absolute path, and status shows its success', (t) => {
  const dir = tempDir(t);
  writeTree(path.join(dir, 'src'), { 'a.txt': 'a' });
  const env = { COFFER_DATA_DIR: path.join(dir, 'data') };
  ok(['init', '--repo', 'repo'], { cwd: dir, env });
  ok(['backup', '--repo', 'repo', 'src'], { cwd: dir, env });
  ok(['backup', '--repo', `${dir}/repo/`, path.join(dir, 'src')], { env });
  const status = ok(['status'], { env }).stdout;
  assert.match(status, new RegExp(`^ {2}${path.join(dir, 'repo')}: last success \\d+:\\d\\d ago`, 'm'));
  assert.doesNotMatch(status, /no successful backup yet/);
  const report = JSON.parse(ok(['status', '--json'], { env }).stdout) as { destinations: { destination: { location: string } }[] };
  assert.deepEqual(report.destinations.map((d) => d.destination.location), [path.join(dir, 'repo')]);
  const twice = coffer(['snapshots', '--repo', 'repo', '--repo', './repo/'], { cwd: dir });
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /^coffer: the repository location .*\/repo is given twice\n$/);
});

test('bug 6: restore into a place the system refuses or onto a file, and setup on /proc, give one line at once', (t) => {
  const dir = tempDir(t);
  const source = writeTree(path.join(dir, 'src'), { 'a.txt': 'a' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  for (const target of ['/proc/sys/x', '/proc/nope/deeper']) {
    const r = coffer(['restore', '--repo', repo, 'latest', '--target', target], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, `${target}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^coffer: cannot create directory /proc/\\S+: the file system does not allow it\\n$`));
  }
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const onFile = coffer(['restore', '--repo', repo, 'latest', '--target', file]);
  assert.equal(onFile.code, 1);
  assert.equal(onFile.stderr, `coffer: cannot create directory ${file}: it exists and is not a directory\n`);
  assert.equal(fs.readFileSync(file, 'utf8'), 'x');

  const setup = coffer(['setup'], { input: ['p', source, '', '/proc/nope', ''].join('\n'), timeoutMs: 60_000 });
  assert.match(setup.stdout, /test-write failed: writing .* to \/proc\/nope: cannot create directory \/proc\/nope: the file system does not allow it; try another destination/);
  assert.match(setup.stderr, /^coffer: setup stopped: no more answers on the input\n$/);
});

test('bug 8: dump refuses to write a tar archive to a terminal, and writes it when redirected', async (t) => {
  const dir = tempDir(t);
  const source = writeTree(path.join(dir, 'src'), { 'a.txt': 'alpha' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  const r = await onTerminal(['dump', '--repo', repo, 'latest', '/'], []);
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /coffer: \/ is a directory and would be written as a tar archive to the terminal; redirect it/);
  assert.doesNotMatch(r.output, /ustar/);
  const file = await onTerminal(['dump', '--repo', repo, 'latest', path.join(source, 'a.txt')], []);
  assert.equal(file.code, 0, file.output);
  assert.match(file.output, /alpha/);
  const tar = spawnSync('sh', ['-c', `"${process.execPath}" "${MAIN}" dump --repo "${repo}" latest / | tar -t`], { env: environment({}), encoding: 'utf8' });
  assert.equal(tar.status, 0, tar.stderr);
  assert.match(tar.stdout, /src\/a\.txt/);
});

test('bug 10: --tag a,b is two tags; a --tag filter a,b needs both, repeated --tag takes either', (t) => {
  const dir = tempDir(t);
  const source = writeTree(path.join(dir, 'src'), { 'a.txt': 'a' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--tag', 'daily,photos', '--tag', ' extra ', source]);
  ok(['backup', '--repo', repo, '--tag', 'daily', source]);
  const tags = jsonLines<{ tags: string[] }>(ok(['snapshots', '--repo', repo, '--json']).stdout).map((s) => s.tags);
  assert.deepEqual(tags, [['daily', 'extra', 'photos'], ['daily']]);
  const count = (...filter: string[]): number => jsonLines(ok(['snapshots', '--repo', repo, '--json', ...filter]).stdout).length;
  assert.equal(count('--tag', 'daily,photos'), 1);
  assert.equal(count('--tag', 'photos', '--tag', 'daily'), 2);
  assert.equal(count('--tag', 'nope,daily'), 0);
});
