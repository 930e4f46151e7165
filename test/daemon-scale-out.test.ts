// The daemon runs a plan with `workers: N` through N worker processes on this machine, as
// `coffer backup --plan` does (scale-out/local-run.ts): one snapshot with the tree ids of a
// single-process backup; a cancel kills the workers and leaves no writer marker and no snapshot; a run
// whose workers were all killed fails with one line instead of waiting forever; a daemon stopped
// mid-run leaves the job interrupted and resumes it at its next start from what is stored.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { jsonLines, ok, PASSWORD, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';
import { bytesUnder, makeShardedTree, MiB } from './helpers/scale-out.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

/** The daemon's worker processes (forked shard workers), by pid. */
function workerPids(daemonPid: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(daemonPid), '-f', 'shard-worker-process'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function packs(repo: string): { count: number; bytes: number } {
  const data = path.join(repo, 'data');
  return { count: entries(data).reduce((n, d) => n + entries(path.join(data, d)).length, 0), bytes: fs.existsSync(data) ? bytesUnder(data) : 0 };
}

function entries(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

function setup(t: import('node:test').TestContext, blobs: number): { dir: string; repo: string; source: string } {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const { root: source } = makeShardedTree(path.join(dir, 'source'), blobs);
  ok(['init', '--repo', repo]);
  return { dir, repo, source };
}

test('the daemon backs a workers: 3 plan up through three worker processes: one snapshot, the trees of a single run', { timeout: 300_000 }, async (t) => {
  const { dir, repo, source } = setup(t, 2);
  const daemon = await DaemonProcess.start(t, { config: `plans:\n  share:\n    repos: [${repo}]\n    paths: [${source}]\n    workers: 3\n` });
  const { pid } = await daemon.status();
  const job = await daemon.run('share');
  // The workers are children of the daemon for the whole run.
  let most = 0;
  const watch = setInterval(() => (most = Math.max(most, workerPids(pid).length)), 100);
  t.after(() => clearInterval(watch));
  const queued = await daemon.waitFor(new RegExp(`job ${job} \\(plan share\\): (\\d+) shards queued for 3 worker processes`));
  assert.ok(Number(queued[1]) > 1, `the source is split: ${queued[0]}`);
  await daemon.waitFor(new RegExp(`job ${job} \\(plan share\\) completed`), 240_000);
  clearInterval(watch);
  assert.equal(most, 3, 'three worker processes ran');
  await daemon.until(() => workerPids(pid).length === 0, 30_000);
  const done = (await daemon.job(job))!;
  assert.equal(done.state, 'completed');
  assert.ok(done.filesDone > 0 && done.filesDone === done.filesTotal, `the job database has the workers' progress: ${JSON.stringify(done)}`);
  assert.deepEqual(entries(path.join(repo, 'writers')), [], 'no writer marker is left');

  // A single-process backup of the same tree: the same tree id for the source.
  ok(['backup', '--repo', repo, source]);
  const snapshots = jsonLines<{ id: string }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.equal(snapshots.length, 2);
  const opened = await Repository.open([new LocalStore(repo)], PASSWORD);
  t.after(() => opened.close());
  await opened.loadIndex();
  const trees = await Promise.all(
    (await opened.listSnapshots()).map(async (s) => (await (await SnapshotView.open(opened, s.snapshot)).find(source)).tree!.toString('hex')),
  );
  assert.equal(trees[0], trees[1], 'the scaled-out snapshot has the tree id of a single run');

  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repo, snapshots[0]!.id, '--target', target]);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
  assert.equal((await daemon.stop()).code, 0);
});

test('a cancelled workers run kills its workers; a run whose workers are all killed fails with one line; no marker either way', { timeout: 300_000 }, async (t) => {
  const { repo, source } = setup(t, 2);
  // A low upload limit keeps the workers at work long enough to steer.
  const mixed = `  mixed:\n    repos: [${repo}]\n    paths: [${source}]\n    workers: 2\n    sources: [{ type: command, command: 'echo dump', filename: dump.txt }]\n`;
  const daemon = await DaemonProcess.start(t, { config: `plans:\n  share:\n    repos: [${repo}]\n    paths: [${source}]\n    workers: 3\n    limitUpload: [64K]\n${mixed}` });
  const { pid } = await daemon.status();
  const snapshots = (): string[] => entries(path.join(repo, 'snapshots'));

  // Workers back up paths only: a plan that also streams sources fails in one line.
  const refused = await daemon.run('mixed');
  await daemon.waitFor(new RegExp(`job ${refused} \\(plan mixed\\) failed: plan mixed has workers: 2, which backs up paths only; back its sources \\(dumps, commands\\) up with another plan; no retries left`));

  const first = await daemon.run('share');
  await daemon.waitFor(new RegExp(`job ${first} \\(plan share\\): \\d+ shards queued`));
  await daemon.until(() => workerPids(pid).length === 3);
  // Paused and resumed: the job says so, and goes on.
  assert.equal(daemon.cli(['pause', String(first)]).code, 0);
  await daemon.until((s) => s.jobs.find((j) => j.id === first)?.state === 'paused');
  assert.equal(daemon.cli(['resume', String(first)]).code, 0);
  await daemon.until((s) => s.jobs.find((j) => j.id === first)?.state === 'running');
  const cancelled = daemon.cli(['cancel', String(first)]);
  assert.equal(cancelled.code, 0, cancelled.stderr);
  await daemon.until((s) => s.jobs.find((j) => j.id === first)?.state === 'cancelled', 60_000);
  assert.deepEqual(workerPids(pid), [], 'no worker process is left');
  assert.deepEqual(entries(path.join(repo, 'writers')), [], 'no writer marker is left');
  assert.deepEqual(snapshots(), []);

  const second = await daemon.run('share');
  await daemon.waitFor(new RegExp(`job ${second} \\(plan share\\): \\d+ shards queued`));
  await daemon.until(() => workerPids(pid).length === 3);
  for (const worker of workerPids(pid)) process.kill(worker, 'SIGKILL');
  const failed = await daemon.waitFor(new RegExp(`job ${second} \\(plan share\\) failed: (.*)`), 60_000);
  assert.match(failed[1]!, /^all 3 worker processes ended before the backup did \(local-1 killed by SIGKILL, local-2 killed by SIGKILL, local-3 killed by SIGKILL\); no snapshot was made; no retries left/);
  assert.equal((await daemon.job(second))?.state, 'failed');
  assert.deepEqual(entries(path.join(repo, 'writers')), [], 'no writer marker is left');
  assert.deepEqual(snapshots(), []);
  assert.equal((await daemon.stop()).code, 0);
});

test('a daemon stopped in the middle of a workers run marks it interrupted and resumes it at the next start, uploading nothing twice', { timeout: 300_000 }, async (t) => {
  const { repo, source } = setup(t, 2);
  // One shard three times the others' size: its pack lands long after theirs at the limit.
  fs.writeFileSync(path.join(source, 'top-0', 'big.bin'), seededBytes('big', 8 * MiB));
  const randomBytes = (6 * 2 + 8) * MiB;
  const daemon = await DaemonProcess.start(t, { config: `plans:\n  share:\n    repos: [${repo}]\n    paths: [${source}]\n    workers: 3\n    limitUpload: [3M]\n` });
  const { pid } = await daemon.status();
  const job = await daemon.run('share');
  await daemon.waitFor(new RegExp(`job ${job} \\(plan share\\): 3 shards queued`));
  const workers = await daemon.until(() => workerPids(pid).length === 3).then(() => workerPids(pid));
  // Stopped once a first shard's pack is stored, while the big one still waits for bandwidth.
  await daemon.until(() => packs(repo).count > 0, 120_000);
  const stopped = await daemon.stop('SIGTERM');
  assert.equal(stopped.code, 0, daemon.log);
  assert.match(daemon.log, new RegExp(`job ${job} \\(plan share\\) interrupted: the daemon stopped \\(received SIGTERM\\)`));
  assert.deepEqual(workers.filter(alive), [], 'the workers are gone with the daemon');
  assert.deepEqual(entries(path.join(repo, 'writers')), [], 'no writer marker is left');
  assert.deepEqual(entries(path.join(repo, 'snapshots')), []);
  assert.ok(packs(repo).bytes < randomBytes, 'it was stopped in the middle');

  const mark = daemon.log.length;
  await daemon.launch();
  await daemon.waitFor(new RegExp(`job ${job} \\(plan share\\) started \\(resume\\)`), 30_000, mark);
  await daemon.waitFor(new RegExp(`job ${job} \\(plan share\\) completed`), 240_000, mark);
  await daemon.stop();
  // Random data does not compress: a shard stored twice would show as megabytes too many.
  const after = packs(repo);
  assert.ok(after.bytes - randomBytes < 2 * MiB, `packs hold ${after.bytes} bytes for ${randomBytes} bytes of random data`);
  ok(['check', '--repo', repo, '--read-data']);
});
