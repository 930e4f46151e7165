// Bad input of every kind: a clear one-line message, a non-zero exit, no stack trace, and nothing
// stored lost or changed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, cofferAsync, ok, repoWithSnapshot, summaryOf, tempDir, type RunResult } from './helpers/cli.ts';
import { seededBytes } from './helpers/tree.ts';
import { resizeDisk, smallDisk } from './helpers/small-disk.ts';

/** Exit `code` (1 unless given) with exactly one line on stderr, starting "coffer: ", matching `pattern`. */
function assertOneLineError(r: RunResult, pattern: RegExp, code = 1): void {
  assert.equal(r.code, code, `exit code ${code} expected, got ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^coffer: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.doesNotMatch(r.stderr, /unexpected error/, 'a failure we foresaw is explained, not reported as unexpected');
}

/** Every file of a directory with its bytes, to prove a failed command changed nothing. */
function contents(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const p = path.join(entry.parentPath, entry.name);
      out.set(path.relative(dir, p), fs.readFileSync(p).toString('hex'));
    }
  }
  return out;
}

test('wrong passphrase', (t) => {
  const { repo } = repoWithSnapshot(tempDir(t));
  const before = contents(repo);
  assertOneLineError(coffer(['snapshots', '--repo', repo], { env: { COFFER_PASSWORD: 'not it' } }), /wrong passphrase/, 12);
  assertOneLineError(coffer(['backup', '--repo', repo, repo], { env: { COFFER_PASSWORD: 'not it' } }), /wrong passphrase/, 12);
  assert.deepEqual(contents(repo), before);
});

test('passphrase from a file and from a command; a failing command is reported', (t) => {
  const dir = tempDir(t);
  const { repo } = repoWithSnapshot(dir);
  const file = path.join(dir, 'pw');
  fs.writeFileSync(file, 'correct horse battery staple\n');
  ok(['snapshots', '--repo', repo, '--password-file', file], { env: { COFFER_PASSWORD: undefined } });
  ok(['snapshots', '--repo', repo, '--password-command', `cat ${file}`], { env: { COFFER_PASSWORD: undefined } });
  assertOneLineError(coffer(['snapshots', '--repo', repo, '--password-command', 'exit 3'], { env: { COFFER_PASSWORD: undefined } }), /password command failed \(exit 3\)/);
  assertOneLineError(coffer(['snapshots', '--repo', repo, '--password-file', path.join(dir, 'none')], { env: { COFFER_PASSWORD: undefined } }), /cannot read password file/);
  assertOneLineError(coffer(['snapshots', '--repo', repo], { env: { COFFER_PASSWORD: undefined } }), /no passphrase given/);
});

test('missing repository, a directory that is not one, no --repo, and init over an existing one', (t) => {
  const dir = tempDir(t);
  assertOneLineError(coffer(['snapshots', '--repo', path.join(dir, 'nowhere')]), /is not a Coffer repository .*coffer init/, 10);
  fs.mkdirSync(path.join(dir, 'photos'));
  fs.writeFileSync(path.join(dir, 'photos/cat.jpg'), 'meow');
  assertOneLineError(coffer(['backup', '--repo', path.join(dir, 'photos'), dir]), /is not a Coffer repository/, 10);
  assert.deepEqual([...contents(path.join(dir, 'photos')).keys()], ['cat.jpg']);
  assertOneLineError(coffer(['snapshots'], { env: { COFFER_REPO: undefined } }), /no repository given/);
  const { repo } = repoWithSnapshot(path.join(dir, 'x'));
  assertOneLineError(coffer(['init', '--repo', repo]), /already holds a repository/);
});

test('a repository written by a newer format version', (t) => {
  const { repo } = repoWithSnapshot(tempDir(t));
  const config = JSON.parse(fs.readFileSync(path.join(repo, 'config'), 'utf8'));
  fs.writeFileSync(path.join(repo, 'config'), JSON.stringify({ ...config, version: 2 }));
  assertOneLineError(coffer(['snapshots', '--repo', repo]), /format version 2 is newer .* upgrade Coffer/);
});

test('a source that does not exist', (t) => {
  const dir = tempDir(t);
  const { repo } = repoWithSnapshot(dir);
  assertOneLineError(coffer(['backup', '--repo', repo, path.join(dir, 'no-such-dir')]), /source .*no-such-dir does not exist/);
});

test('a spool directory that is missing, a file or not writable fails at once, not after retries', (t) => {
  const dir = tempDir(t);
  const { repo, source } = repoWithSnapshot(dir);
  const before = contents(repo);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  const readOnly = path.join(dir, 'read-only');
  fs.mkdirSync(readOnly, { mode: 0o555 });
  // A retry would sleep 30 s first: the time limit turns one into a failure of the test.
  const backup = (spoolDir: string) => coffer(['backup', '--repo', repo, '--spool-dir', spoolDir, source], { timeoutMs: 20_000, withoutReadOverride: true });
  assertOneLineError(backup(path.join(dir, 'none')), /cannot use .*none as the spool directory: it does not exist/);
  assertOneLineError(backup(file), /cannot use .*a-file as the spool directory: it is not a directory/);
  assertOneLineError(backup(readOnly), /cannot use .*read-only as the spool directory: it is not writable/);
  assert.deepEqual(contents(repo), before);
});

test('unknown flags, missing arguments and bad option values', (t) => {
  const dir = tempDir(t);
  assertOneLineError(coffer(['backup', '--frobnicate', dir]), /unknown option '--frobnicate'/);
  assert.equal(coffer(['restore', '--repo', dir, 'latest']).code, 1);
  assertOneLineError(coffer(['check', '--repo', dir, '--read-data-subset', 'lots']), /percentage/);
  assertOneLineError(coffer(['nonsense']), /unknown command/);
});

test('permission denied while reading: the snapshot is made, the file is listed, exit 3', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(path.join(source, 'locked-dir'), { recursive: true });
  fs.writeFileSync(path.join(source, 'open.txt'), 'readable');
  fs.writeFileSync(path.join(source, 'secret.txt'), 'unreadable');
  fs.writeFileSync(path.join(source, 'locked-dir/inside'), 'unreachable');
  fs.chmodSync(path.join(source, 'secret.txt'), 0o000);
  fs.chmodSync(path.join(source, 'locked-dir'), 0o000);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const r = coffer(['backup', '--repo', repo, source], { withoutReadOverride: true });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /secret\.txt: not backed up: permission denied/);
  assert.match(r.stderr, /locked-dir: cannot read directory: permission denied/);
  const ls = ok(['ls', '--repo', repo, 'latest']).stdout;
  assert.match(ls, /open\.txt/);
  assert.doesNotMatch(ls, /secret\.txt/);
});

test('a symlink loop is stored as links, never followed', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'loop');
  fs.mkdirSync(source);
  fs.symlinkSync('b', path.join(source, 'a'));
  fs.symlinkSync('a', path.join(source, 'b'));
  fs.symlinkSync('.', path.join(source, 'self'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source, path.join(source, 'a')]);
  const out = path.join(dir, 'out');
  ok(['restore', '--repo', repo, 'latest', '--target', out]);
  assert.equal(fs.readlinkSync(path.join(out, source, 'self')), '.');
  assert.equal(fs.readlinkSync(path.join(out, source, 'a')), 'b');
});

test('a damaged pack is named by check, and restore of the damaged file fails clearly', (t) => {
  const dir = tempDir(t);
  const { repo } = repoWithSnapshot(dir, { 'big.bin': seededBytes('damage', 3 << 20), 'small.txt': 'small' });
  const packs = fs.readdirSync(path.join(repo, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  const bigPack = packs.map((e) => path.join(e.parentPath, e.name)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
  const bytes = fs.readFileSync(bigPack);
  bytes[1000]! ^= 0xff;
  fs.writeFileSync(bigPack, bytes);

  assert.match(ok(['check', '--repo', repo]).stdout, /no errors were found/, 'structure alone does not read data');
  const check = coffer(['check', '--repo', repo, '--read-data']);
  assert.equal(check.code, 1);
  const name = path.relative(repo, bigPack);
  assert.match(check.stdout, new RegExp(`pack ${name}: its bytes do not match its name`));
  // Which blob of the pack is damaged depends on what else the worker packed beside big.bin.
  assert.match(check.stdout, new RegExp(`pack ${name}: blob \\d+ \\(data [0-9a-f]{16}\\) fails authentication`));

  const restore = coffer(['restore', '--repo', repo, 'latest', '--target', path.join(dir, 'out')]);
  assert.equal(restore.code, 1);
  assert.match(restore.stderr, /\/source\/big\.bin: blob [0-9a-f]{16} in pack .* fails authentication/);
  assert.equal(fs.readFileSync(path.join(dir, 'out', dir, 'source/small.txt'), 'utf8'), 'small', 'undamaged files are still restored');
});

test('truncated and missing objects are reported by check', (t) => {
  const dir = tempDir(t);
  const { repo } = repoWithSnapshot(dir);
  const dataFiles = fs.readdirSync(path.join(repo, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  fs.truncateSync(dataFiles[0]!, 10);
  fs.rmSync(dataFiles[1]!);
  const check = coffer(['check', '--repo', repo, '--read-data']);
  assert.equal(check.code, 1);
  assert.match(check.stdout, /is truncated|no pack trailer/);
  assert.match(check.stdout, /listed in the index but missing/);

  const index = fs.readdirSync(path.join(repo, 'index'))[0]!;
  fs.writeFileSync(path.join(repo, 'index', index), 'garbage');
  const again = coffer(['check', '--repo', repo]);
  assert.match(again.stdout, /index file index\/[0-9a-f]+: .*does not match its name/);
  const snapshots = coffer(['snapshots', '--repo', repo]);
  assert.equal(snapshots.code, 0);
});

test('a full disk fails the backup cleanly; the repository stays valid and the next run reuses what was stored', (t) => {
  const dir = tempDir(t);
  // Room for two 16 MiB packs (two upload at once), not for all 48 MiB of incompressible data.
  const mount = smallDisk(t, '36m');
  if (!mount) return;
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(source, `photo-${i}.raw`), seededBytes(`photo${i}`, 4 << 20));
  const repo = path.join(mount, 'repo');
  ok(['init', '--repo', repo]);
  const r = coffer(['backup', '--repo', repo, '--max-retries', '0', source]);
  assertOneLineError(r, /no space left on device/);
  assert.deepEqual(fs.readdirSync(path.join(repo, 'tmp')), [], 'no temporary file is left behind');
  assert.match(ok(['check', '--repo', repo, '--read-data']).stdout, /no errors were found/);

  assert.ok(resizeDisk(mount, '128m'));
  const summary = summaryOf(ok(['backup', '--repo', repo, '--json', source]).stdout);
  assert.ok((summary.adoptedPacks as number) > 0, 'packs stored before the disk filled up are reused');
  assert.ok((summary.bytesAdded as number) < 40 << 20);
  const out = path.join(dir, 'out');
  ok(['restore', '--repo', repo, 'latest', '--target', out]);
  assert.ok(fs.readFileSync(path.join(out, source, 'photo-11.raw')).equals(fs.readFileSync(path.join(source, 'photo-11.raw'))));
});

test('a full spool directory fails the backup with one line; nothing is stored, nothing is left in the spool', (t) => {
  const dir = tempDir(t);
  // Less than one 16 MiB pack: the chunk workers write their packs there as they fill.
  const spool = smallDisk(t, '4m');
  if (!spool) return;
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(source, `photo-${i}.raw`), seededBytes(`spool photo${i}`, 4 << 20));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const before = contents(repo);
  const r = coffer(['backup', '--repo', repo, '--max-retries', '0', '--spool-dir', spool, source]);
  assertOneLineError(r, /cannot write a pack to the spool directory .*: .*no space left on device/);
  assert.deepEqual(contents(repo), before, 'no pack, index or snapshot was stored');
  assert.deepEqual(fs.readdirSync(spool), []);
  assert.equal(fs.statfsSync(spool).bfree, fs.statfsSync(spool).blocks, 'and the space is free again');
});

test('a full disk fails a restore file by file: exit 1, the files that fit in place, nothing half-written left, the bytes counted are those restored', (t) => {
  const dir = tempDir(t);
  const mount = smallDisk(t, '20m');
  if (!mount) return;
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 4; i++) files[`big-${i}.bin`] = seededBytes(`restore-full-${i}`, 8 << 20);
  for (let i = 0; i < 50; i++) files[`small-${i}.txt`] = Buffer.from(`small ${i}\n`);
  const { repo, source } = repoWithSnapshot(dir, files);
  const target = path.join(mount, 'out');
  const r = coffer(['restore', '--repo', repo, 'latest', '--target', target, '--json']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /no space left on device/);
  const restored = fs.readdirSync(path.join(target, source));
  assert.deepEqual(restored.filter((name) => name.startsWith('.coffer-restore-')), [], 'no temporary file is left behind');
  assert.ok(restored.length > 0 && restored.length < Object.keys(files).length, `some files fit, not all: ${restored.length}`);
  for (const name of restored) assert.ok(fs.readFileSync(path.join(target, source, name)).equals(files[name]!), `${name} is whole`);
  const bytes = restored.reduce((sum, name) => sum + files[name]!.length, 0);
  assert.equal(summaryOf(r.stdout).bytes, bytes, 'the summary counts the files put in place, not what was written of the others');
});

test('Ctrl-C during a backup leaves no half object, and the next backup reuses what was stored', async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`ctrl-c ${i}`, 8 << 20));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const run = cofferAsync(['backup', '--repo', repo, '--json', source]);
  // Interrupt once the first packs are on disk (a busy machine may take a while to get there): files
  // under data/<2 hex>/, not the folders, which are made before an upload lands (and a Ctrl-C stops the
  // uploads under way, so a pack whose folder is there may never land).
  const packsStored = (): number => (fs.existsSync(path.join(repo, 'data')) ? fs.readdirSync(path.join(repo, 'data')).reduce((n, d) => n + fs.readdirSync(path.join(repo, 'data', d)).length, 0) : 0);
  for (let i = 0; i < 2400 && packsStored() < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /interrupted: what was already stored is kept/);
  assert.deepEqual(fs.readdirSync(path.join(repo, 'tmp')), []);
  assert.ok(!fs.existsSync(path.join(repo, 'snapshots')) || fs.readdirSync(path.join(repo, 'snapshots')).length === 0, 'no snapshot');
  assert.match(ok(['check', '--repo', repo]).stdout, /no errors were found/);

  const summary = summaryOf(ok(['backup', '--repo', repo, '--json', source]).stdout);
  assert.ok((summary.bytesAdded as number) < 190 << 20, `the second run stored ${summary.bytesAdded} bytes again`);
  ok(['check', '--repo', repo, '--read-data']);
});

test('a file that keeps changing while it is read is reported, exit 3', async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  const busy = path.join(source, 'growing.log');
  fs.writeFileSync(busy, seededBytes('grow', 30 << 20));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const writer = setInterval(() => fs.appendFileSync(busy, 'x'.repeat(1000)), 1);
  t.after(() => clearInterval(writer));
  const r = await cofferAsync(['backup', '--repo', repo, source]).done;
  clearInterval(writer);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /growing\.log: kept changing while being read/);
});
