// The worker processes of a plan with `workers: N` open the stores exactly as the plan's backup does:
// its upload limit (shared among them), its CA certificate for HTTPS S3, and the storage credentials of
// its credentialsCommand, which reach them over IPC, never on a command line or in their environment.
// A paused run's workers claim nothing until it resumes. Workers that each write to their own replica
// (bench/scale-out.ts) still leave every replica whole.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PauseGate } from '../src/engine/pause-gate.ts';
import { runScaledBackup } from '../src/scale-out/coordinator.ts';
import { LocalScaledBackup } from '../src/scale-out/local-run.ts';
import { chunkThreadsPerWorker, startLocalWorkers, stopLocalWorkers } from '../src/scale-out/local-workers.ts';
import { MemoryShardQueue } from '../src/scale-out/shard-queue.ts';
import { coffer, cofferAsync, ok, tempDir } from './helpers/cli.ts';
import { startS3Server } from './helpers/s3-server.ts';
import { makeShardedTree, MiB, shardedTreeAndRepository } from './helpers/scale-out.ts';
import { selfSignedCertificate } from './helpers/tls.ts';
import { treeDifferences } from './helpers/tree.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function workerPids(parent: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(parent), '-f', 'shard-worker-process'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

function packs(repo: string): { bytes: number; lastWritten: number } {
  let bytes = 0;
  let lastWritten = 0;
  for (const e of fs.readdirSync(path.join(repo, 'data'), { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const stat = fs.statSync(path.join(e.parentPath, e.name));
    bytes += stat.size;
    lastWritten = Math.max(lastWritten, stat.mtimeMs);
  }
  return { bytes, lastWritten };
}

test("the workers together keep to the plan's upload limit", { timeout: 300_000 }, (t) => {
  const dir = tempDir(t);
  // Three shards of about 2 MiB of random data each.
  const { root: source } = makeShardedTree(path.join(dir, 'source'), 1);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const config = path.join(dir, 'config.yaml');
  const limit = 256 * 1024;
  fs.writeFileSync(config, `plans:\n  share:\n    repos: [${repo}]\n    paths: [${source}]\n    workers: 3\n    limitUpload: [256K]\n`);
  const started = Date.now();
  const out = ok(['backup', '--plan', 'share', '--config', config]).stdout;
  assert.match(out, /^3 shards queued for 3 worker processes$/m);
  const { bytes, lastWritten } = packs(repo);
  assert.ok(bytes > 6 * MiB, `${bytes} bytes of packs`);
  // However the load slows the run, the packs cannot have left faster than the limit allows (each
  // worker's throttle may start with one second's worth of its share).
  const seconds = (lastWritten - started) / 1000;
  const least = (bytes - limit) / limit;
  assert.ok(seconds >= 0.9 * least, `${bytes} bytes stored within ${seconds.toFixed(1)} s of the start: faster than ${limit} bytes/s (at least ${least.toFixed(1)} s)`);
});

test("the workers trust the plan's CA certificate and take the credentials of its credentialsCommand over IPC only", { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const cert = await selfSignedCertificate(dir);
  const server = await startS3Server('coffer-test', { tls: cert });
  t.after(() => server.stop());
  const { root: source } = makeShardedTree(path.join(dir, 'source'), 0);
  const repo = `s3:${server.endpoint}/${server.bucket}/repo`;
  const { accessKeyId, secretAccessKey } = server.credentials;
  ok(['init', '--repo', repo, '--cacert', cert.cert], { env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } });
  const config = path.join(dir, 'config.yaml');
  const print = `printf 'AWS_ACCESS_KEY_ID=${accessKeyId}\\nAWS_SECRET_ACCESS_KEY=${secretAccessKey}\\n'`;
  fs.writeFileSync(config, `plans:\n  share:\n    repos: ["${repo}"]\n    paths: [${source}]\n    workers: 2\n    cacert: [${cert.cert}]\n    credentialsCommand: ${JSON.stringify(print)}\n`);
  const noKeys = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_PROFILE: undefined, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'), AWS_CONFIG_FILE: path.join(dir, 'none') };

  const backup = cofferAsync(['backup', '--plan', 'share', '--config', config], { env: noKeys });
  // While it runs: the secret is in no worker's command line or environment.
  const seen = new Set<number>();
  const watch = setInterval(() => {
    for (const pid of workerPids(backup.child.pid!)) {
      try {
        const exposed = ['cmdline', 'environ'].map((f) => fs.readFileSync(`/proc/${pid}/${f}`, 'latin1')).join('\0');
        assert.doesNotMatch(exposed, /AWS_SECRET_ACCESS_KEY/, `worker ${pid} holds the secret in its command line or environment`);
        seen.add(pid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }, 50);
  t.after(() => clearInterval(watch));
  const r = await backup.done;
  clearInterval(watch);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^2 shards queued for 2 worker processes$/m);
  assert.ok(seen.size > 0, 'the worker processes were looked at');

  const target = path.join(dir, 'restored');
  const restored = coffer(['restore', '--repo', repo, '--cacert', cert.cert, 'latest', '--target', target], { env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});

test('a paused run starts its workers paused: they claim no shard until it resumes', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const { source, locations: [repoDir], repo } = await shardedTreeAndRepository(t, dir);
  const pause = new PauseGate();
  pause.pause();
  let queued!: () => void;
  const shardsQueued = new Promise<void>((resolve) => (queued = resolve));
  const run = new LocalScaledBackup(repo, { locations: [repoDir], stores: {}, paths: [source], workers: 3, pause, onQueued: () => queued() });
  const result = run.run();
  await shardsQueued;
  // The workers start, ask for shards and get none: after a while, all three still wait.
  await sleep(3000);
  const status = run.status()!;
  assert.deepEqual([status.running.length, status.waiting.length, status.done], [0, 3, 0]);
  assert.equal(run.progress().bytesDone, 0);
  pause.resume();
  const { snapshot } = await result;
  assert.equal(snapshot.partial, undefined);
  assert.equal(snapshot.summary.totalFiles, 6 * 10 * 32 + 6 + 1);
});

test('workers that each write to their own replica (the bench): every replica ends up whole and restores alone', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const { source, locations: dirs, repo } = await shardedTreeAndRepository(t, dir, ['replica-1', 'replica-2']);
  const queue = new MemoryShardQueue();
  const workers = startLocalWorkers(queue, 2, { locations: dirs, locationsOf: (i) => [dirs[i]!], password: 'pass', capacity: 1, heartbeatMs: 1000 });
  t.after(() => stopLocalWorkers(workers));
  const merged = await runScaledBackup(repo, queue, { paths: [source], workers: 2, onQueued: () => {} }).finally(() => (queue.stop(), repo.close()));
  assert.ok(merged.destinations.every((d) => d.committed), JSON.stringify(merged.destinations));
  for (const replica of dirs) {
    ok(['check', '--read-data', '--repo', replica], { env: { COFFER_PASSWORD: 'pass' } });
    const target = path.join(dir, `restored-${path.basename(replica)}`);
    ok(['restore', '--repo', replica, 'latest', '--target', target], { env: { COFFER_PASSWORD: 'pass' } });
    assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
  }
});

test("worker processes share the machine's cores as chunk threads instead of each starting one per core", () => {
  assert.deepEqual([1, 2, 3, 4].map((n) => chunkThreadsPerWorker(n, 2)), [2, 1, 1, 1]);
  assert.deepEqual([1, 2, 3, 64].map((n) => chunkThreadsPerWorker(n, 8)), [8, 4, 3, 1]);
});
