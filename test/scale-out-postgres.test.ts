// Scale-out through PostgreSQL and pg-boss: the shards are pg-boss jobs, three real worker processes
// fetch them, one is killed with SIGKILL mid-shard; the coordinator fails its silent attempt after the
// heartbeat timeout and pg-boss hands the shard to another worker, which resumes it from what is stored.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { PgBoss } from 'pg-boss';
import { BackupRun } from '../src/engine/backup/backup.ts';
import type { ShardOutcome } from '../src/engine/scale-out/scale-out.ts';
import type { ShardJson } from '../src/engine/scale-out/shard-plan.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { runScaledBackup } from '../src/scale-out/coordinator.ts';
import { startLocalWorkers, stopLocalWorkers } from '../src/scale-out/local-workers.ts';
import { PgBossShardQueue } from '../src/scale-out/pg-boss-shard-queue.ts';
import type { EnqueuedRun } from '../src/scale-out/shard-queue.ts';
import { LocalStore } from '../src/store/local.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { postgresAvailable, startPostgres } from './helpers/postgres.ts';
import { bytesUnder, makeShardedTree, MidShardKiller, MiB, SLOW_UPLOADS } from './helpers/scale-out.ts';
import { treeDifferences } from './helpers/tree.ts';

const PASS = 'scale-out postgres test';

test('three worker processes on pg-boss, one killed mid-shard: its shard completes elsewhere and the snapshot is whole', { skip: postgresAvailable() ? false : 'no PostgreSQL binaries' }, async (t) => {
  const server = await startPostgres();
  t.after(() => server.stop());
  const url = await server.createDatabase();
  const boss = new PgBoss({ connectionString: url, max: 4 });
  boss.on('error', () => {});
  await boss.start();
  t.after(() => boss.stop({ graceful: false }));

  const dir = tempDir(t);
  const { root: source, randomBytes } = makeShardedTree(path.join(dir, 'source'));
  const repoDir = path.join(dir, 'repo');
  await initRepository([new LocalStore(repoDir)], PASS);
  const open = async (): Promise<Repository> => {
    const repo = await Repository.open([new LocalStore(repoDir)], PASS);
    t.after(() => repo.close());
    return repo;
  };

  let outcomes: ShardOutcome[] = [];
  class RecordingQueue extends PgBossShardQueue {
    override async enqueue(shards: readonly ShardJson[], parent?: string): Promise<EnqueuedRun> {
      const run = await super.enqueue(shards, parent);
      return { run: run.run, outcomes: run.outcomes.then((o) => (outcomes = o)) };
    }
  }
  const queue = new RecordingQueue(boss, { heartbeatTimeoutMs: 8000, pollMs: 250 });
  t.after(() => queue.stop());
  const starts: { worker: string; index: number }[] = [];
  const killer = new MidShardKiller();
  const workers = startLocalWorkers(undefined, 3, {
    locations: [repoDir],
    password: PASS,
    capacity: 1,
    heartbeatMs: 20,
    chunkWorkers: 1,
    packSize: MiB,
    postgresUrl: url,
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
  assert.equal(new Set(starts.map((s) => s.worker)).size, 3, 'all three workers fetched shards');
  assert.ok(outcomes.every((o) => o.ok));
  assert.ok(outcomes.some((o) => o.ok && o.adoptedPacks! > 0), `the shard's second run adopted the killed worker's packs: ${JSON.stringify(outcomes.map((o) => o.ok && o.adoptedPacks))}`);
  const stored = bytesUnder(path.join(repoDir, 'data'));
  assert.ok(stored < randomBytes + 4 * MiB, `the repository holds ${stored} bytes of packs for ${randomBytes} bytes of random data`);

  const single = await new BackupRun(await open(), { paths: [source], parent: null, packSize: MiB, workers: 1 }).run();
  const repo = await open();
  await repo.loadIndex();
  const treeOf = async (snapshot: typeof single.snapshot) => (await (await SnapshotView.open(repo, snapshot)).find(source)).tree!.toString('hex');
  assert.equal(await treeOf(merged.snapshot), await treeOf(single.snapshot), 'same tree id as a single run');

  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repoDir, merged.snapshotId, '--target', target], { env: { COFFER_PASSWORD: PASS } });
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});
