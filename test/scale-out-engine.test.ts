// Scale-out in one process: a source split into shards, each backed up on its own into the shared
// repository, merged into one snapshot whose root tree id is the one a single walk of the same tree makes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { mergeShards, outcomeOf, planShards, ScaleOutError, shardRun, type ShardOutcome } from '../src/engine/scale-out/scale-out.ts';
import { assignments, decodeShard, describeMissing, encodeShard, ShardPlanError, type ShardPlan } from '../src/engine/scale-out/shard-plan.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import type { Snapshot } from '../src/format/snapshot.ts';
import { initRepository, Repository, type StoredSnapshot } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { runScaledBackup } from '../src/scale-out/coordinator.ts';
import { MemoryShardQueue } from '../src/scale-out/shard-queue.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

const PASS = 'scale-out test';

/** About 3 500 files, unevenly spread: one huge directory, a few medium ones, loose files, odd entries. */
function makeTree(root: string, scale = 1): string {
  const dir = (...parts: string[]): string => {
    const p = path.join(root, ...parts);
    fs.mkdirSync(p, { recursive: true });
    return p;
  };
  for (let a = 0; a < 8 * scale; a++) {
    for (let b = 0; b < 16 * scale; b++) {
      const d = dir('huge', `a${a}`, `b${b}`);
      for (let f = 0; f < 16; f++) fs.writeFileSync(path.join(d, `f${f}.txt`), `huge ${a} ${b} ${f}\n`.repeat(1 + ((a * b + f) % 40)));
    }
  }
  for (let m = 0; m < 6; m++) {
    const d = dir(`medium-${m}`);
    for (let f = 0; f < 200 * scale; f++) fs.writeFileSync(path.join(d, `file-${f}`), `medium ${m} ${f}\n`.repeat(20));
  }
  for (let f = 0; f < 200; f++) fs.writeFileSync(path.join(root, `loose-${String(f).padStart(3, '0')}`), `loose ${f}\n`);
  fs.writeFileSync(path.join(dir('medium-2'), 'big.bin'), seededBytes('scale-out big', 3 * 1024 * 1024));
  dir('empty');
  dir('deep', ...Array.from({ length: 40 }, (_, i) => `level-${i}`));
  fs.symlinkSync('medium-1/file-1', path.join(root, 'link'));
  fs.writeFileSync(path.join(dir('huge', 'a3'), Buffer.from([0x6e, 0xff, 0x2e, 0x62, 0x69, 0x6e]).toString('latin1')), 'not UTF-8');
  fs.writeFileSync(path.join(root, 'huge', 'hard-a'), 'linked');
  fs.linkSync(path.join(root, 'huge', 'hard-a'), path.join(root, 'medium-4', 'hard-b'));
  return root;
}

async function setup(t: import('node:test').TestContext, scale = 1) {
  const dir = tempDir(t);
  const source = makeTree(path.join(dir, 'source'), scale);
  const repoDir = path.join(dir, 'repo');
  const store = new LocalStore(repoDir);
  await initRepository([store], PASS);
  const open = async (): Promise<Repository> => {
    const repo = await Repository.open([new LocalStore(repoDir)], PASS);
    t.after(() => repo.close());
    return repo;
  };
  return { dir, source, repoDir, open };
}

const small = { packSize: 1 << 20, workers: 1 } as const;

/**
 * The id of the source's tree in a snapshot. The root tree holds the directories above the source too,
 * and the temporary directory's metadata changes whenever another test makes a file there.
 */
async function sourceTree(repo: Repository, snapshot: Snapshot, source: string): Promise<string> {
  await repo.loadIndex();
  return (await (await SnapshotView.open(repo, snapshot)).find(source)).tree!.toString('hex');
}

/** Runs every shard of the plan, each in its own repository handle (as separate workers would). */
async function runShards(open: () => Promise<Repository>, plan: ShardPlan, parent?: StoredSnapshot): Promise<ShardOutcome[]> {
  const outcomes: ShardOutcome[] = [];
  for (const shard of assignments(plan)) {
    // Each shard goes through the JSON a job carries.
    const decoded = decodeShard(JSON.parse(JSON.stringify(encodeShard(shard))));
    outcomes.push(outcomeOf(await shardRun(await open(), decoded, parent, small).runShard()));
  }
  return outcomes;
}

test('sharded backup: the merged snapshot has the tree ids of a single run and restores byte for byte', async (t) => {
  const { dir, source, repoDir, open } = await setup(t);
  const single = await new BackupRun(await open(), { ...small, paths: [source], parent: null }).run();
  assert.equal(single.snapshot.summary.totalFiles > 3000, true, 'the tree has thousands of files');

  // No previous snapshot: split from a scan of the source.
  const plan = await planShards(await open(), { paths: [source], workers: 3, shardsPerWorker: 2, minShardWeight: 1 });
  assert.ok(plan.shards.length >= 4, `${plan.shards.length} shards`);
  assert.ok(plan.split.some((d) => d.toString() === path.join(source, 'huge')), 'the huge directory is split further');
  const startedAt = new Date();
  const outcomes = await runShards(open, plan);
  const merged = await mergeShards(await open(), plan, outcomes, { startedAt, ...small });
  const repo = await open();
  assert.equal(await sourceTree(repo, merged.snapshot, source), await sourceTree(repo, single.snapshot, source), 'same tree id as the single run');
  assert.equal(merged.snapshot.summary.totalFiles, single.snapshot.summary.totalFiles);
  assert.equal(merged.snapshot.summary.totalBytes, single.snapshot.summary.totalBytes);
  assert.equal(merged.snapshot.summary.dirs, single.snapshot.summary.dirs);
  assert.equal(merged.snapshot.partial, undefined);

  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repoDir, merged.snapshotId, '--target', target], { env: { COFFER_PASSWORD: PASS } });
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});

test('with a previous snapshot: split by its sizes, unchanged files not read, changes since the plan still backed up', async (t) => {
  const { source, open } = await setup(t, 0.25);
  const first = await new BackupRun(await open(), { ...small, paths: [source], parent: null }).run();
  const parent = (await (await open()).listSnapshots()).find((s) => s.id === first.snapshotId)!;
  const plan = await planShards(await open(), { paths: [source], workers: 2, shardsPerWorker: 2, minShardWeight: 1, parent });
  assert.ok(plan.shards.length >= 3);
  // Planned from the snapshot: what appears after the plan falls in some range all the same.
  fs.writeFileSync(path.join(source, 'huge', 'a1', 'zz-new'), 'new after the plan');
  fs.mkdirSync(path.join(source, 'huge', '0-new-dir'));
  fs.writeFileSync(path.join(source, 'huge', '0-new-dir', 'x'), 'x');
  fs.writeFileSync(path.join(source, 'loose-100'), 'changed');
  const outcomes = await runShards(open, plan, parent);
  const merged = await mergeShards(await open(), plan, outcomes, { startedAt: new Date(), parent, ...small });
  const summary = merged.snapshot.summary;
  assert.deepEqual([summary.filesNew, summary.filesChanged], [2, 1]);
  assert.equal(summary.filesUnmodified, first.snapshot.summary.totalFiles - 1);
  const single = await new BackupRun(await open(), { ...small, paths: [source], parent }).run();
  const repo = await open();
  assert.equal(await sourceTree(repo, merged.snapshot, source), await sourceTree(repo, single.snapshot, source), 'same tree id as a single run of the same state');
  assert.equal(merged.snapshot.parent, parent.id);
});

test('a failed shard fails the snapshot with a report; a plan that allows partial snapshots gets one marked partial', async (t) => {
  const { source, repoDir, open } = await setup(t, 0.25);
  const plan = await planShards(await open(), { paths: [source], workers: 2, shardsPerWorker: 2, minShardWeight: 1 });
  const outcomes = await runShards(open, plan);
  outcomes[1] = { ok: false, error: 'worker w2 stopped heartbeating and the retries ran out' };
  const before = (await (await open()).listSnapshots()).length;
  await assert.rejects(mergeShards(await open(), plan, outcomes, { startedAt: new Date(), ...small }), (err: Error) => {
    assert.ok(err instanceof ScaleOutError);
    assert.match(err.message, /^no snapshot was made: 1 of \d+ shards failed: shard 2 of \d+ \(.+\): worker w2 stopped heartbeating/);
    assert.match(err.message, /allowPartial/);
    return true;
  });
  assert.equal((await (await open()).listSnapshots()).length, before, 'no snapshot is written');

  const partial = await mergeShards(await open(), plan, outcomes, { startedAt: new Date(), allowPartial: true, ...small });
  const missing = partial.snapshot.partial?.missing;
  assert.ok(missing && missing.length === plan.shards[1]!.parts.length, 'the missing parts are listed');
  const stored = (await (await open()).listSnapshots()).find((s) => s.id === partial.snapshotId)!;
  assert.deepEqual(stored.snapshot.partial, partial.snapshot.partial, 'the partial field is stored and read back');
  const env = { env: { COFFER_PASSWORD: PASS } };
  const note = `snapshot ${partial.snapshotId.slice(0, 8)} is partial: it lacks ${missing.map(describeMissing).join('; ')}`;
  assert.ok(ok(['snapshots', '--repo', repoDir], env).stdout.split('\n').includes(note), 'coffer snapshots says what a partial snapshot lacks');
  assert.equal(ok(['ls', '--repo', repoDir, partial.snapshotId, source], env).stderr, `warning: ${note}\n`);
  assert.ok(missing.every((m) => m.path !== undefined || m.dir!.startsWith(source)));

  // A shard's warnings come with its result and are the merged run's warnings.
  const first = outcomes[0]!;
  assert.ok(first.ok);
  outcomes[1] = { ...first, warnings: [{ path: '/data/x', message: 'not backed up: permission denied' }, { path: 5, message: null } as never] };
  const warned = await mergeShards(await open(), plan, outcomes, { startedAt: new Date(), ...small });
  assert.deepEqual(warned.warnings, [{ path: '/data/x', message: 'not backed up: permission denied' }], 'malformed warnings from the queue are dropped');

  outcomes[0] = { ok: true, tree: 'not a tree id', summary: partial.snapshot.summary };
  await assert.rejects(mergeShards(await open(), plan, outcomes, { startedAt: new Date(), ...small }), /shard 1 of \d+ .*: its result has no valid tree id/);
});

test('a shard from the queue is checked before anything is walked', () => {
  const good = { paths: ['/data'], split: ['/data'], parts: [{ dir: '/data', from: 'm' }], files: 1, bytes: 2 };
  assert.equal(decodeShard(good).parts.length, 1);
  assert.deepEqual(decodeShard({ ...good, split: [{ base64: Buffer.from('/data').toString('base64') }] }).split, [Buffer.from('/data')]);
  const bad: [unknown, RegExp][] = [
    [null, /must have its sources/],
    [{ ...good, parts: [] }, /1 to 100000 sources and parts/],
    [{ ...good, paths: ['data'] }, /source 1 of the shard is not an absolute path/],
    [{ ...good, split: ['/data/../etc'] }, /split directory 1 has a component that is not a valid file name/],
    [{ ...good, split: ['/etc'] }, /not inside a source of the backup/],
    [{ ...good, parts: [{ dir: '/data/x' }] }, /not inside a source|not a split directory/],
    [{ ...good, parts: [{ dir: '/data', from: 'a/b' }] }, /from is not a valid file name/],
    [{ ...good, parts: [{ source: '/other' }] }, /names a source the backup does not have/],
    [{ ...good, parts: [{ dir: '/data', to: { base64: '!!' } }] }, /not valid base64/],
  ];
  for (const [value, message] of bad) assert.throws(() => decodeShard(value), (err: Error) => err instanceof ShardPlanError && message.test(err.message), JSON.stringify(value));
});

test('a missing source is reported before any shard is queued', async (t) => {
  const { dir, open } = await setup(t, 0.25);
  const queue = new MemoryShardQueue();
  await assert.rejects(runScaledBackup(await open(), queue, { paths: [path.join(dir, 'nope')], workers: 2 }), new RegExp(`^BackupError: source ${path.join(dir, 'nope')} does not exist; check the path$`));
  assert.deepEqual(queue.claim('w', 10), []);
});
