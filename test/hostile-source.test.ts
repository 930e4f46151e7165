// A source tree someone else can write into: however deep or unreadable a directory is, the backup
// warns about it (exit 3) and the snapshot holds everything else.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, ok, tempDir } from './helpers/cli.ts';

/** `depth` nested directories named 'd' below `root`, made through open directories (the path outgrows PATH_MAX). */
function makeDeepDir(root: string, depth: number): void {
  let fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  for (let level = 0; level < depth; level++) {
    fs.mkdirSync(`/proc/self/fd/${fd}/d`);
    const next = fs.openSync(`/proc/self/fd/${fd}/d`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    fs.closeSync(fd);
    fd = next;
  }
  fs.writeFileSync(`/proc/self/fd/${fd}/bottom.txt`, 'at the bottom');
  fs.closeSync(fd);
}

test('directories 2,100 and 2,500 levels deep: warnings and exit 3, everything else is saved', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  t.after(() => spawnSync('rm', ['-rf', source]));
  for (const depth of [2100, 2500]) {
    fs.mkdirSync(path.join(source, `deep-${depth}`), { recursive: true });
    makeDeepDir(path.join(source, `deep-${depth}`), depth);
  }
  fs.writeFileSync(path.join(source, 'shallow.txt'), 'near the top');
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const r = coffer(['backup', '--repo', repo, '--max-retries', '0', source]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /the path is longer than the system can open/);
  assert.doesNotMatch(r.stderr, /call stack|unexpected error/);
  const listing = ok(['ls', '--repo', repo, 'latest', '--recursive']).stdout;
  assert.ok(listing.split('\n').includes(`${source}/shallow.txt`), listing.slice(0, 500));
  // Everything the system could reach was saved: the deep chains go on to near PATH_MAX.
  const deepest = Math.max(...listing.split('\n').filter((l) => l.startsWith(`${source}/deep-2100/`)).map((l) => l.split('/').length - source.split('/').length));
  assert.ok(deepest > 2000, `the snapshot stops at depth ${deepest}`);
});

test('a directory that can be read but not searched (0444), backed up as a user: warnings, exit 3, the rest saved', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  const locked = path.join(source, 'read-only');
  fs.mkdirSync(locked, { recursive: true });
  fs.writeFileSync(path.join(locked, 'inside.txt'), 'listed, never examined');
  fs.writeFileSync(path.join(source, 'fine.txt'), 'fine');
  fs.chmodSync(locked, 0o444);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const r = coffer(['backup', '--repo', repo, source], { withoutReadOverride: true });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /read-only\/inside\.txt: not backed up: permission denied/);
  const listing = ok(['ls', '--repo', repo, 'latest', '--recursive']).stdout.split('\n');
  assert.ok(listing.includes(`${source}/fine.txt`), listing.join('\n'));
  assert.ok(listing.includes(`${source}/read-only`), listing.join('\n'));
});
