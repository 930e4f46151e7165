// What broke a new user's first try (issue 9), in longer runs: progress and duration with a slow upload,
// restore progress, exit 3 with exit 4, jobs stopped while waiting to retry.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Repository } from '../src/repo/repository.ts';
import { RestoreRun } from '../src/engine/restore/restore.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { LocalStore } from '../src/store/local.ts';
import { ThrottleStore } from '../src/store/throttle.ts';
import { coffer, cofferAsync, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { smallDisk } from './helpers/small-disk.ts';
import { onTerminal } from './helpers/terminal.ts';
import { seededBytes, writeTree } from './helpers/tree.ts';

async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('bug 9: with one slow destination the progress shows the upload, and the summary the true duration', async (t) => {
  const dir = tempDir(t);
  const source = writeTree(path.join(dir, 'src'), { big: seededBytes('slow upload', 6 << 20) });
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
  const source = writeTree(path.join(dir, 'src'), files);
  const repoDir = path.join(dir, 'repo');
  ok(['init', '--repo', repoDir]);
  ok(['backup', '--repo', repoDir, source]);
  // A slow disk (2 MiB/s) stretches the restore of 6 MiB over a few seconds.
  const repo = await Repository.open([new ThrottleStore(new LocalStore(repoDir), { download: 2 << 20 })], PASSWORD);
  t.after(() => repo.close());
  await repo.loadIndex();
  const [snapshot] = await repo.listSnapshots();
  const view = await SnapshotView.open(repo, snapshot!.snapshot);
  const run = new RestoreRun(repo, { target: path.join(dir, 'target'), workers: 1 });
  const seen = new Set<number>();
  const sampler = setInterval(() => seen.add(run.progress().filesDone), 20);
  try {
    await run.run(view, await view.find(''));
  } finally {
    clearInterval(sampler);
  }
  assert.equal(run.progress().filesDone, 24);
  assert.ok([...seen].some((n) => n > 0 && n < 24), `files counted along the way, not all at once: ${[...seen].sort((a, b) => a - b).join(' ')}`);
});

test('bug 11: unreadable files and a missed destination give exit 3, and the summary says both', (t) => {
  const dir = tempDir(t);
  const source = writeTree(path.join(dir, 'src'), { 'ok.txt': 'fine', 'secret.txt': 'hidden' });
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
  const source = writeTree(path.join(dir, 'src'), { big: seededBytes('no room', 4 << 20) });
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
  const source = writeTree(path.join(dir, 'src'), { 'a.txt': 'a' });
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
