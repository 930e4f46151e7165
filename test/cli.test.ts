// The command line as users see it: help, snapshot names, listings, keys, progress and JSON output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, CONFIG_FILE, DATA_DIR, jsonLines, MAIN, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { seededBytes } from './helpers/tree.ts';

test('--help of the program and of every command lists its options', () => {
  const top = ok(['--help']).stdout;
  for (const command of ['init', 'backup', 'snapshots', 'ls', 'restore', 'dump', 'diff', 'check', 'key']) assert.match(top, new RegExp(`^  ${command}\\b`, 'm'));
  const expected: Record<string, string[]> = {
    backup: ['--repo', '--password-file', '--password-command', '--json', '--exclude', '--exclude-file', '--one-file-system', '--tag', '--host', '--dry-run'],
    restore: ['--target', '--include', '--exclude', '--host', '--path', '--tag'],
    check: ['--read-data', '--read-data-subset'],
    snapshots: ['--host', '--path', '--tag', '--json'],
    ls: ['--long'],
  };
  for (const [command, options] of Object.entries(expected)) {
    const help = ok([command, '--help']).stdout;
    for (const option of options) assert.ok(help.includes(option), `${command} --help lacks ${option}`);
  }
  assert.match(ok(['key', 'add', '--help']).stdout, /--new-password-file/);
});

test('snapshot names: full id, unique prefix, latest with filters; ambiguous and unknown ones are refused', (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  fs.writeFileSync(path.join(a, 'one'), '1');
  fs.writeFileSync(path.join(b, 'two'), '2');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--host', 'alpha', '--tag', 'daily', a]);
  ok(['backup', '--repo', repo, '--host', 'beta', b]);
  const snaps = jsonLines<{ id: string; host: string; tags: string[] }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.deepEqual(snaps.map((s) => s.host), ['alpha', 'beta']);
  assert.deepEqual(snaps[0]!.tags, ['daily']);

  assert.match(ok(['ls', '--repo', repo, snaps[0]!.id]).stdout, new RegExp(`^${a}/one$`, 'm'));
  assert.match(ok(['ls', '--repo', repo, snaps[0]!.id.slice(0, 6)]).stdout, new RegExp(`^${a}/one$`, 'm'));
  assert.match(ok(['ls', '--repo', repo, 'latest']).stdout, new RegExp(`^${b}/two$`, 'm'));
  assert.match(ok(['ls', '--repo', repo, 'latest', '--host', 'alpha']).stdout, new RegExp(`^${a}/one$`, 'm'));
  assert.match(ok(['ls', '--repo', repo, 'latest', '--tag', 'daily']).stdout, new RegExp(`^${a}/one$`, 'm'));
  assert.match(ok(['snapshots', '--repo', repo, '--host', 'beta']).stdout, /^1 snapshot$/m);

  const unknown = coffer(['ls', '--repo', repo, 'ffffffff']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no snapshot ffffffff/);
  assert.match(coffer(['ls', '--repo', repo, 'not-an-id']).stderr, /not a snapshot id/);
  assert.match(coffer(['ls', '--repo', repo, 'latest', '--host', 'gamma']).stderr, /no snapshot matches/);
  // Two snapshots always share the empty prefix; find a real shared one-digit prefix if there is one.
  const shared = snaps[0]!.id[0] === snaps[1]!.id[0] ? snaps[0]!.id[0]! : undefined;
  if (shared) assert.match(coffer(['ls', '--repo', repo, shared]).stderr, /ambiguous/);
  assert.match(coffer(['ls', '--repo', repo, 'latest', '/nope']).stderr, /path \/nope is not in the snapshot/);
});

test('keys: add, list, open with either passphrase, passwd, remove; the key in use and the last key stay', (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['key', 'add', '--repo', repo], { env: { COFFER_NEW_PASSWORD: 'second passphrase' } });
  const keys = jsonLines<{ id: string; current: boolean }>(ok(['key', 'list', '--repo', repo, '--json']).stdout);
  assert.equal(keys.length, 2);
  const mine = keys.find((k) => k.current)!;
  const other = keys.find((k) => !k.current)!;
  ok(['snapshots', '--repo', repo], { env: { COFFER_PASSWORD: 'second passphrase' } });
  assert.match(coffer(['key', 'remove', '--repo', repo, mine.id]).stderr, /refusing to remove the key in use/);
  ok(['key', 'remove', '--repo', repo, other.id.slice(0, 10)]);
  assert.match(coffer(['snapshots', '--repo', repo], { env: { COFFER_PASSWORD: 'second passphrase' } }).stderr, /wrong passphrase/);

  const newFile = path.join(dir, 'new');
  fs.writeFileSync(newFile, 'third passphrase\n');
  ok(['key', 'passwd', '--repo', repo, '--new-password-file', newFile]);
  assert.match(coffer(['snapshots', '--repo', repo]).stderr, /wrong passphrase/);
  ok(['snapshots', '--repo', repo], { env: { COFFER_PASSWORD: 'third passphrase' } });
  assert.equal(jsonLines(ok(['key', 'list', '--repo', repo, '--json'], { env: { COFFER_PASSWORD: 'third passphrase' } }).stdout).length, 1);
});

test('--json backup prints status lines with totals and a summary', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(source);
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`json${i}`, 8 << 20));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const lines = jsonLines(ok(['backup', '--repo', repo, '--json', source]).stdout);
  const status = lines.filter((l) => l.type === 'status');
  assert.ok(status.length >= 1, 'at least one status line during a backup of over a second');
  const last = status[status.length - 1]!;
  for (const field of ['filesDone', 'filesTotal', 'bytesDone', 'bytesTotal', 'bytesPerSecond', 'currentFile', 'stage', 'destinations']) assert.ok(field in last, field);
  const summary = summaryOf(lines.map((l) => JSON.stringify(l)).join('\n'));
  assert.equal(summary.totalFiles, 20);
  assert.equal(summary.totalBytes, 20 * (8 << 20));
});

test('a terminal gets a live status line with files, bytes, speed and ETA', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(source);
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`tty${i}`, 8 << 20));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  // `script` gives the command a pseudo-terminal, as an interactive shell would.
  const r = spawnSync('script', ['-qec', `${process.execPath} ${MAIN} backup --repo ${repo} ${source}`, '/dev/null'], {
    env: { ...process.env, COFFER_PASSWORD: PASSWORD, COFFER_DATA_DIR: DATA_DIR, COFFER_CONFIG: CONFIG_FILE, COLUMNS: '200' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /\[0:0\d\] [\d.]+% \d+\/24 files [\d.]+ (MiB|KiB|B)\/192 MiB [\d.]+ \S+\/s( ETA \d+:\d\d)? \w+/);
  assert.match(r.stdout, /snapshot [0-9a-f]{8} saved/);
});

test('dry run stores nothing', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'f'), seededBytes('dry', 1 << 20));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const before = fs.readdirSync(repo, { recursive: true }).length;
  const summary = summaryOf(ok(['backup', '--repo', repo, '--dry-run', '--json', source]).stdout);
  assert.equal(summary.dryRun, true);
  assert.ok((summary.bytesAdded as number) > 1 << 20);
  assert.equal(fs.readdirSync(repo, { recursive: true }).length, before);
  assert.match(ok(['snapshots', '--repo', repo]).stdout, /0 snapshots/);
});

test('excludes: by name, by absolute path, by path suffix, and from a file; --one-file-system', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  for (const f of ['keep.txt', 'skip.tmp', 'cache/a.bin', 'cache/keep.txt', 'deep/x/cache/b.bin', 'build/out', 'notes/skip-me']) {
    fs.mkdirSync(path.dirname(path.join(source, f)), { recursive: true });
    fs.writeFileSync(path.join(source, f), f);
  }
  const excludeFile = path.join(dir, 'excludes');
  fs.writeFileSync(excludeFile, '# comment\n\nskip-me\n');
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--exclude', '*.tmp', '--exclude', `${source}/build`, '--exclude', 'cache/*.bin', '--exclude-file', excludeFile, '--one-file-system', source]);
  const listed = ok(['ls', '--repo', repo, 'latest']).stdout.trim().split('\n');
  assert.deepEqual(listed.filter((l) => !fs.statSync(l).isDirectory()).sort(), [`${source}/cache/keep.txt`, `${source}/keep.txt`]);
});

test('doctor: one line per check, OK or what to fix; exit 1 when something fails', (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const good = ok(['doctor', '--repo', repo]).stdout;
  assert.match(good, /^ok {4}node: Node\.js v24/m);
  assert.match(good, /^ok {4}threads: backups read with \d+ threads?, restores write with \d+ threads? \(\d+ cores?, [\d.]+ [KMGT]iB of memory\)$/m);
  assert.match(good, /^ok {4}write .*repo: test-write passed/m);
  assert.match(good, /^ok {4}passphrase: from COFFER_PASSWORD; it opens the repository/m);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, '');
  const bad = coffer(['doctor', '--repo', repo, '--repo', path.join(dir, 'empty'), '--repo', path.join(file, 'below')], { env: { COFFER_PASSWORD: 'wrong' } });
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^FAIL {2}repository .*empty: .*not a Coffer repository .*coffer init/m);
  assert.match(bad.stdout, /^FAIL {2}write .*file\/below: test-write failed/m);
  assert.match(bad.stdout, /^FAIL {2}passphrase: .*wrong passphrase/m);
  assert.match(good, /^ok {4}spool: .* free$/m);
  assert.match(ok(['doctor', '--repo', repo, '--spool-dir', dir]).stdout, new RegExp(`^ok {4}spool: ${dir}: .* free$`, 'm'));
  const noSpool = coffer(['doctor', '--repo', repo, '--spool-dir', file]);
  assert.equal(noSpool.code, 1);
  assert.match(noSpool.stdout, /^FAIL {2}spool: cannot use .*file as the spool directory: it is not a directory$/m);
});
