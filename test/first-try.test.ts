// What broke a new user's first try (issue 9): re-includes, relative repositories in status, restore
// targets the system refuses, dump to a terminal, progress and duration with slow uploads, restore
// progress, comma-separated tags, exit 3 with exit 4, jobs stopped while waiting to retry.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Repository } from '../src/repo/repository.ts';
import { RestoreRun } from '../src/engine/restore/restore.ts';
import { LocalStore } from '../src/store/local.ts';
import { ThrottleStore } from '../src/store/throttle.ts';
import { coffer, cofferAsync, jsonLines, MAIN, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { smallDisk } from './helpers/small-disk.ts';
import { onTerminal } from './helpers/terminal.ts';
import { seededBytes } from './helpers/tree.ts';

function tree(root: string, files: Record<string, string | Buffer>): string {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), content);
  }
  return root;
}

function lsPaths(repo: string, snapshot = 'latest'): string[] {
  return jsonLines<{ path: string }>(ok(['ls', '--repo', repo, snapshot, '--json']).stdout).map((n) => n.path);
}

async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('bug 2: !PATTERN re-includes what an earlier exclude left out; a backup that excludes everything warns', (t) => {
  const dir = tempDir(t);
  const source = tree(path.join(dir, 'src'), { 'keep.bin': 'k', 'drop.bin': 'd', 'notes.txt': 'n', 'data/a.bin': 'a', 'data/keep.bin': 'k2' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--exclude', '*.bin', '--exclude', '!keep.bin', source]);
  assert.deepEqual(lsPaths(repo).sort(), ['/src', '/src/data', '/src/data/keep.bin', '/src/keep.bin', '/src/notes.txt']);

  // The last matching pattern decides: a later exclude takes a re-included file out again.
  ok(['backup', '--repo', repo, '--exclude', '*.bin', '--exclude', '!keep.bin', '--exclude', 'data/keep.bin', source]);
  assert.deepEqual(lsPaths(repo).filter((p) => p.endsWith('.bin')), ['/src/keep.bin']);

  const empty = ok(['backup', '--repo', repo, '--exclude', '*', source]);
  assert.match(empty.stderr, /^warning: every file matched an exclude pattern: the snapshot holds no files/m);
  const all = ok(['backup', '--repo', repo, '--exclude', '*.bin', path.join(source, 'keep.bin')]);
  assert.match(all.stderr, /every file matched an exclude pattern/, 'a source that is excluded itself is left out, as restic does');
});

test('bug 5: a relative --repo is one destination with its absolute path, and status shows its success', (t) => {
  const dir = tempDir(t);
  tree(path.join(dir, 'src'), { 'a.txt': 'a' });
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
  const source = tree(path.join(dir, 'src'), { 'a.txt': 'a' });
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
  const source = tree(path.join(dir, 'src'), { 'a.txt': 'alpha' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  const r = await onTerminal(['dump', '--repo', repo, 'latest', '/'], []);
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /coffer: \/ is a directory and would be written as a tar archive to the terminal; redirect it/);
  assert.doesNotMatch(r.output, /ustar/);
  const file = await onTerminal(['dump', '--repo', repo, 'latest', '/src/a.txt'], []);
  assert.equal(file.code, 0, file.output);
  assert.match(file.output, /alpha/);
  const tar = spawnSync('sh', ['-c', `"${process.execPath}" "${MAIN}" dump --repo "${repo}" latest / | tar -t`], { env: { ...process.env, COFFER_PASSWORD: PASSWORD }, encoding: 'utf8' });
  assert.equal(tar.status, 0, tar.stderr);
  assert.match(tar.stdout, /src\/a\.txt/);
});

test('bug 9: with one slow destination the progress shows the upload, and the summary the true duration', async (t) => {
  const dir = tempDir(t);
  const source = tree(path.join(dir, 'src'), { big: seededBytes('slow upload', 6 << 20) });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const r = await onTerminal(['backup', '--repo', repo, '--limit-upload', '1M', source], [], { env: { COLUMNS: '200' }, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.output);
  // The destination's own line, with its bar and bytes, for a single destination too.
  assert.match(r.output, new RegExp(`${repo.replace(/[/.]/g, '\\$&')} \\[[#.]{16}\\] \\d+/\\d+ objects`));
  assert.match(r.output, /left to upload/);
  const duration = /processed 1 file, 6\.00 MiB in (\d+):(\d\d)/.exec(r.output);
  assert.ok(duration, r.output);
  assert.ok(Number(duration[1]) * 60 + Number(duration[2]) >= 4, `an upload of 6 MiB at 1 MiB/s takes over 4 s, not ${duration[0]}`);

  fs.writeFileSync(path.join(source, 'more'), seededBytes('more', 3 << 20));
  const summary = summaryOf(ok(['backup', '--repo', repo, '--limit-upload', '1M', '--json', source]).stdout);
  assert.ok((summary.durationMs as number) >= 2000, `durationMs ${summary.durationMs}`);
});

test('bug 9: restore counts each file as it is complete, not batch by batch', async (t) => {
  const dir = tempDir(t);
  const files = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`f${i}`, seededBytes(`restore count ${i}`, 256 << 10)]));
  const source = tree(path.join(dir, 'src'), files);
  const repoDir = path.join(dir, 'repo');
  ok(['init', '--repo', repoDir]);
  ok(['backup', '--repo', repoDir, source]);
  // A slow disk (2 MiB/s) stretches the restore of 6 MiB over a few seconds.
  const repo = await Repository.open([new ThrottleStore(new LocalStore(repoDir), { download: 2 << 20 })], PASSWORD);
  t.after(() => repo.close());
  await repo.loadIndex();
  const [snapshot] = await repo.listSnapshots();
  const run = new RestoreRun(repo, { target: path.join(dir, 'target'), workers: 1 });
  const seen = new Set<number>();
  const sampler = setInterval(() => seen.add(run.progress().filesDone), 20);
  try {
    await run.run({ tree: Buffer.from(snapshot!.snapshot.tree, 'hex') });
  } finally {
    clearInterval(sampler);
  }
  assert.equal(run.progress().filesDone, 24);
  assert.ok([...seen].some((n) => n > 0 && n < 24), `files counted along the way, not all at once: ${[...seen].sort((a, b) => a - b).join(' ')}`);
});

test('bug 10: --tag a,b is two tags; a --tag filter a,b needs both, repeated --tag takes either', (t) => {
  const dir = tempDir(t);
  const source = tree(path.join(dir, 'src'), { 'a.txt': 'a' });
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

test('bug 11: unreadable files and a missed destination give exit 3, and the summary says both', (t) => {
  const dir = tempDir(t);
  const source = tree(path.join(dir, 'src'), { 'ok.txt': 'fine', 'secret.txt': 'hidden' });
  fs.chmodSync(path.join(source, 'secret.txt'), 0o000);
  const good = path.join(dir, 'good');
  const refusing = path.join(dir, 'refusing');
  ok(['init', '--repo', good, '--repo', refusing]);
  // Without root's override, a repository whose folders are read-only refuses every new object.
  for (const sub of ['', 'keys']) fs.chmodSync(path.join(refusing, sub), 0o555);
  const human = coffer(['backup', '--repo', good, '--repo', refusing, source], { withoutReadOverride: true });
  assert.equal(human.code, 3, human.stderr);
  assert.match(human.stderr, /1 file could not be backed up completely .*the snapshot is incomplete \(exit code 3\)/);
  assert.match(human.stderr, /1 destination did not get the snapshot; .*\(exit code 4, but 3 takes precedence\)/);

  const json = coffer(['backup', '--repo', good, '--repo', refusing, '--json', source], { withoutReadOverride: true });
  assert.equal(json.code, 3);
  const summary = summaryOf(json.stdout);
  assert.equal(summary.exitCode, 3);
  assert.equal(summary.incomplete, true);
  assert.deepEqual(summary.missedDestinations, [refusing]);
});

test('bug 12: Ctrl-C during the retry wait leaves an interrupted job, not one "due now" for ever', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const mount = smallDisk(t, '1m');
  if (!mount) return;
  const configFile = path.join(dir, 'config.yaml');
  const repo = path.join(mount, 'repo');
  const source = tree(path.join(dir, 'src'), { big: seededBytes('no room', 4 << 20) });
  fs.writeFileSync(configFile, `plans:\n  full:\n    repos: [${repo}]\n    paths: [${source}]\nretries: { max: 3, delays: [600], networkDelays: [600] }\n`);
  const env = { COFFER_CONFIG: configFile, COFFER_DATA_DIR: path.join(dir, 'data') };
  ok(['init', '--repo', repo], { env });

  const waiting = cofferAsync(['backup', '--plan', 'full'], { env });
  await until(() => /retrying in 10:00/.test(waiting.output().stderr), 'the first failure');
  waiting.child.kill('SIGINT');
  const stopped = await waiting.done;
  assert.equal(stopped.code, 130, stopped.stderr);
  const status = ok(['status'], { env }).stdout;
  assert.doesNotMatch(status, /queued:|due now/);
  assert.match(status, /problems:\n {2}job 1 \(plan full\) interrupted: stopped while waiting to retry; the last attempt failed: .*no space left on device/);

  // Killed outright while waiting: the retry is shown as waiting for the next run, not as due.
  const killed = cofferAsync(['backup', '--plan', 'full'], { env });
  await until(() => /retrying in 10:00/.test(killed.output().stderr), 'the second failure');
  killed.child.kill('SIGKILL');
  await killed.done;
  const after = ok(['status'], { env }).stdout;
  assert.doesNotMatch(after, /due now/);
  assert.match(after, /queued:\n {2}job 1 \(plan full\): retry \d waits for the next coffer backup --plan full \(process \d+, which was to run it, is gone\)/);
});

test('bug 12: a mistyped source leaves no problem behind, and only the newest failure of a plan is one', (t) => {
  const dir = tempDir(t);
  const env = { COFFER_DATA_DIR: path.join(dir, 'data') };
  const source = tree(path.join(dir, 'src'), { 'a.txt': 'a' });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo], { env });
  const typo = coffer(['backup', '--repo', repo, path.join(dir, 'scr')], { env });
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /^coffer: source .*\/scr does not exist; check the path\n$/);
  const wrongRepo = coffer(['backup', '--repo', path.join(dir, 'rpeo'), source], { env });
  assert.equal(wrongRepo.code, 10);
  ok(['backup', '--repo', repo, source], { env });
  assert.match(ok(['status'], { env }).stdout, /problems:\n {2}none/);
});
