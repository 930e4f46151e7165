// Scale-out speed-up (`npm run bench -- --scale-out`): the photos and small-files corpora backed up as one
// source, by one ordinary backup process, then by a scaled-out backup with 1, 2 and 3 worker processes on
// this machine (in-process shard queue), each into a fresh local repository; then by 2 and 3 workers
// that each write to their own replica of a repository with one replica per worker (the merge then
// copies to each replica what the others wrote: a snapshot is committed only where all it needs is).
// Reports wall time, speed and the speed-up against the ordinary backup, with the machine's cores and
// CPU time: every worker chunks, hashes, compresses and encrypts on its own, so the speed-up is bounded
// by the cores (and, on a fast CPU, by the disk that is read and written).
//
// COFFER_BENCH_REPLICA_DIRS=/disk1/r,/disk2/r,/disk3/r puts the replicas on other disks (default: under
// the work directory, so they share its disk).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { runScaledBackup } from '../src/scale-out/coordinator.ts';
import { startLocalWorkers, stopLocalWorkers } from '../src/scale-out/local-workers.ts';
import { workerKeys } from '../src/scale-out/shard-worker-process.ts';
import { MemoryShardQueue } from '../src/scale-out/shard-queue.ts';
import { LocalStore } from '../src/store/local.ts';
import { generatedDataset, scanTree } from './corpus.ts';
import { machineInfo } from './machine.ts';

const PASS = 'scale-out bench';

interface Row {
  readonly what: string;
  readonly seconds: number;
  /** CPU seconds of this process and its finished children (the workers) during the run. */
  readonly cpuSeconds: number;
  readonly shards?: number;
}

/** A fresh repository with one replica in each of `dirs`. */
async function freshRepository(dirs: readonly string[]): Promise<Repository> {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  await initRepository(dirs.map((d) => new LocalStore(d)), PASS);
  return Repository.open(dirs.map((d) => new LocalStore(d)), PASS);
}

/** CPU seconds so far of this process (its threads included) and of its children that have ended. */
function cpuSeconds(): number {
  const own = process.cpuUsage();
  return (own.user + own.system) / 1e6 + childrenCpuSeconds();
}

/**
 * cutime + cstime of this process (/proc/self/stat fields 16 and 17, in clock ticks of 1/100 s): the CPU
 * of its children that have ended and been waited for (the workers; Node has no RUSAGE_CHILDREN).
 */
function childrenCpuSeconds(): number {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return 0;
  }
}

async function timed(what: string, body: () => Promise<number | undefined>): Promise<Row> {
  const started = performance.now();
  const cpu = cpuSeconds();
  const shards = await body();
  const row = { what, seconds: (performance.now() - started) / 1000, cpuSeconds: cpuSeconds() - cpu, ...(shards ? { shards } : {}) };
  process.stderr.write(`${what}: ${row.seconds.toFixed(1)} s, ${row.cpuSeconds.toFixed(1)} CPU s\n`);
  return row;
}

/** A scaled-out backup by `n` worker processes into `repo` (whose replicas are in `dirs`); worker i writes to `own(i)` only, if given. */
async function scaledRun(repo: Repository, dirs: readonly string[], sources: readonly string[], n: number, own?: (i: number) => readonly string[]): Promise<number> {
  const queue = new MemoryShardQueue();
  const workers = startLocalWorkers(queue, n, { locations: dirs, keys: workerKeys(repo), capacity: 1, heartbeatMs: 5000, ...(own ? { locationsOf: own } : {}) });
  let shards = 0;
  try {
    await runScaledBackup(repo, queue, { paths: sources, workers: n, onQueued: (_run, plan) => (shards = plan.shards.length) });
  } finally {
    queue.stop();
    await stopLocalWorkers(workers);
    await repo.close();
  }
  return shards;
}

export async function runScaleOutBench(options: { quick: boolean; workDir: string; output: string; workers?: readonly number[] }): Promise<void> {
  const sources = [generatedDataset('photos', options.quick).versions[0]!, generatedDataset('files', options.quick).versions[0]!];
  const stats = sources.map((s) => scanTree(s));
  const bytes = stats.reduce((n, s) => n + s.bytes, 0);
  const files = stats.reduce((n, s) => n + s.files, 0);
  const repoDir = path.join(options.workDir, 'scale-out-repo');
  const given = process.env.COFFER_BENCH_REPLICA_DIRS?.split(',').filter(Boolean);
  const replicaDirs = (n: number): string[] => Array.from({ length: n }, (_, i) => given?.[i] ?? path.join(options.workDir, `scale-out-replica-${i + 1}`));
  const rows: Row[] = [];
  rows.push(
    await timed('one backup process', async () => {
      const repo = await freshRepository([repoDir]);
      try {
        await repo.loadIndex();
        await new BackupRun(repo, { paths: sources, parent: null }).run();
      } finally {
        await repo.close();
      }
      return undefined;
    }),
  );
  const counts = options.workers ?? [1, 2, 3];
  for (const n of counts) {
    rows.push(await timed(`${n} worker process${n > 1 ? 'es' : ''}`, async () => scaledRun(await freshRepository([repoDir]), [repoDir], sources, n)));
  }
  for (const n of counts.filter((c) => c > 1)) {
    const dirs = replicaDirs(n);
    rows.push(await timed(`${n} worker processes, each writing to its own replica`, async () => scaledRun(await freshRepository(dirs), dirs, sources, n, (i) => [dirs[i]!])));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.rmSync(repoDir, { recursive: true, force: true });
  const base = rows[0]!.seconds;
  const lines = [
    '# Scale-out: one source, several worker processes',
    '',
    `Generated by \`npm run bench -- --scale-out${options.quick ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)}.`,
    '',
    ...machineInfo(options.workDir),
    '',
    `Source: the photos and small-files corpora, ${files.toLocaleString('en-US')} files, ${(bytes / 2 ** 30).toFixed(2)} GiB, backed up as one snapshot into a fresh local repository each time.`,
    '',
    '| run | shards | wall time | CPU time | speed | speed-up |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.shards ?? '–'} | ${r.seconds.toFixed(1)} s | ${r.cpuSeconds.toFixed(1)} s | ${(bytes / 2 ** 20 / r.seconds).toFixed(0)} MiB/s | ${(base / r.seconds).toFixed(2)}× |`),
    '',
    `What bounds the speed-up: each worker process chunks, hashes, compresses and encrypts its shards on its own, and this machine has ${os.availableParallelism()} cores, which one ordinary backup already keeps busy with its chunk worker threads (CPU time over wall time above says how many were busy); past that, the disk the source is read from and the repository written to. The scaled-out runs also pay for the split (a scan of the source without a previous snapshot), starting the workers and the merge: measured on the quick corpora (CPU-s), about 0.6 for each worker process's start and module loading, 0.25 for each of its chunk threads (⌈cores / workers⌉ each, kept from shard to shard), and 0.1 for each shard (opening the repository with the coordinator's keys, loading the index, a writer marker, listing the packs and adopting those other workers uploaded but have not indexed yet).`,
    '',
    `Workers that each write to their own replica (${given ? `replicas in ${given.slice(0, Math.max(...counts)).join(', ')}` : 'replicas under the work directory, on the same disk as the one repository above'}) do not share a destination while they back up; the merge then copies to each replica the packs the other workers wrote, since a snapshot is committed on a replica only once everything it refers to is there. So they gain where one destination is the bound (a network link or a disk per worker, as on separate machines) and pay one copy of the data per extra replica at the end.`,
    '',
  ];
  fs.writeFileSync(options.output, lines.join('\n'));
  process.stderr.write(`wrote ${options.output}\n`);
}
