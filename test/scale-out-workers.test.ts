// Scale-out on the embedded default: the in-process shard queue, three real worker processes, one of
// them killed with SIGKILL mid-shard. Its shard goes to another worker after the heartbeat timeout,
// which resumes it from what is stored; the merged snapshot restores byte for byte and has the tree ids
// of a single run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { runScaledBackup } from '../src/scale-out/coordinator.ts';
import { startLocalWorkers, stopLocalWorkers } from '../src/scale-out/local-workers.ts';
import { MemoryShardQueue } from '../src/scale-out/shard-queue.ts';
import type { ShardOutcome } from '../src/engine/scale-out/scale-out.ts';
import { LocalStore } from '../src/store/local.ts';
import { coffer, jsonLines, ok, tempDir } from './helpers/cli.ts';
import { treeDifferences } from './helpers/tree.ts';
import { bytesUnder, makeShardedTree as makeTree, MidShardKiller, MiB, SLOW_UPLOADS } from './helpers/scale-out.ts';

const PASS = 'scale-out workers test';

test('three worker processes, one killed mid-shard: its shard completes elsewhere and the snapshot is whole', async (t) => {
  const dir = tempDir(t);
  const { root: source, randomBytes } = makeTree(path.join(dir, 'source'));
  const repoDir = path.join(dir, 'repo');
  await initRepository([new LocalStore(repoDir)], PASS);
  const open = async (): Promise<Repository> => {
    const repo = await Repository.open([new LocalStore(repoDir)], PASS);
    t.after(() => repo.close());
    return repo;
  };

  const outcomes = new Map<string, ShardOutcome>();
  class RecordingQueue extends MemoryShardQueue {
    override finish(claim: string, outcome: ShardOutcome): boolean {
      outcomes.set(claim, outcome);
      return super.finish(claim, outcome);
    }
  }
  const queue = new RecordingQueue({ heartbeatTimeoutMs: 8000 });
  t.after(() => queue.stop());
  const starts: { worker: string; index: number }[] = [];
  const killer = new MidShardKiller();
  const workers = startLocalWorkers(queue, 3, {
    locations: [repoDir],
    password: PASS,
    capacity: 1,
    heartbeatMs: 20,
    chunkWorkers: 1,
    packSize: MiB,
    onStarted: (worker, index) => starts.push({ worker, index }),
    stores: SLOW_UPLOADS,
    onProgress: killer.onProgress,
  });
  killer.workers = workers;
  t.after(() => stopLocalWorkers(workers));

  const merged = await runScaledBackup(await open(), queue, { paths: [source], workers: 3, shardsPerWorker: 2, minShardWeight: 1 });
  assert.ok(killer.victim, `a worker was killed mid-shard: ${JSON.stringify(starts)}`);
  const rerun = starts.filter((s) => s.index === killer.victim!.index);
  assert.equal(rerun.length, 2, `shard ${killer.victim!.index} ran twice: ${JSON.stringify(starts)}`);
  assert.notEqual(rerun[1]!.worker, killer.victim!.worker, 'another worker took it over');
  assert.ok(new Set(starts.map((s) => s.worker)).size === 3, 'all three workers claimed shards');
  assert.equal(merged.snapshot.partial, undefined);

  // The shard's second run takes over the packs the killed worker had stored but not yet indexed.
  const resumed = [...outcomes.values()].find((o) => o.ok && o.adoptedPacks);
  assert.ok(resumed?.ok && resumed.adoptedPacks! > 0, `a shard run adopted the killed worker's packs: ${JSON.stringify([...outcomes.values()].map((o) => (o.ok ? o.adoptedPacks : o.error)))}`);
  // What was stored before the kill is not stored twice (random data does not compress).
  const stored = bytesUnder(path.join(repoDir, 'data'));
  assert.ok(stored < randomBytes + 4 * MiB, `the repository holds ${stored} bytes of packs for ${randomBytes} bytes of random data`);

  const single = await new BackupRun(await open(), { paths: [source], parent: null, packSize: MiB, workers: 1 }).run();
  const repo = await open();
  await repo.loadIndex();
  const treeOf = async (snapshot: typeof single.snapshot) => (await (await SnapshotView.open(repo, snapshot)).find(source)).tree!.toString('hex');
  assert.equal(await treeOf(merged.snapshot), await treeOf(single.snapshot), 'same tree id as a single run');
  assert.equal(single.snapshot.summary.dataBlobs, 0, 'the single run after it found every chunk stored');

  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repoDir, merged.snapshotId, '--target', target], { env: { COFFER_PASSWORD: PASS } });
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});

test('a plan with workers: 2 backs up through two worker processes into one snapshot', (t) => {
  const dir = tempDir(t);
  const { root: source } = makeTree(path.join(dir, 'source'), 0);
  const repoDir = path.join(dir, 'repo');
  ok(['init', '--repo', repoDir]);
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, `plans:\n  share:\n    repos: [${repoDir}]\n    paths: [${source}]\n    workers: 2\n`);
  const out = ok(['backup', '--plan', 'share', '--config', config]).stdout;
  assert.match(out, /^2 shards queued for 2 worker processes$/m);
  const snapshots = jsonLines<{ id: string }>(ok(['snapshots', '--repo', repoDir, '--json']).stdout);
  assert.equal(snapshots.length, 1);
  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repoDir, 'latest', '--target', target]);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);

  fs.writeFileSync(config, `plans:\n  share:\n    repos: [${repoDir}]\n    paths: [${source}]\n    workers: 0\n`);
  const bad = coffer(['backup', '--plan', 'share', '--config', config]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.equal(bad.stderr, `coffer: ${config} line 5: plans.share.workers: must be 1 or more\n`);
  fs.writeFileSync(config, `plans:\n  share:\n    repos: [${repoDir}]\n    paths: [${source}]\n    workers: 2\n`);
  const dry = coffer(['backup', '--plan', 'share', '--config', config, '--dry-run']);
  assert.equal(dry.stderr, 'coffer: plan share has workers: 2; --dry-run works on ordinary backups only\n');
});
