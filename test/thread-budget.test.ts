// Worker threads are one per core unless their memory would take more than a quarter of the machine's
// (or the container's) memory: a 4-core NAS with 1 GiB runs two chunk workers, not four.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { chunkThreadsPerWorker } from '../src/scale-out/local-workers.ts';
import { CHUNK_THREAD_BYTES, RESTORE_THREAD_BYTES, threadLimit, usableMemory } from '../src/engine/thread-budget.ts';
import { environment, MAIN, ok, REPO_ROOT, tempDir } from './helpers/cli.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

const CENSUS = path.join(import.meta.dirname, 'fixtures/worker-census.ts');

const GiB = 1024 ** 3;

test('one thread per core where the memory allows it', () => {
  assert.equal(threadLimit(CHUNK_THREAD_BYTES, 2, 24 * GiB), 2);
  assert.equal(threadLimit(CHUNK_THREAD_BYTES, 16, 8 * GiB), 16);
  assert.equal(threadLimit(RESTORE_THREAD_BYTES, 4, 1 * GiB), 4);
});

test('fewer threads than cores where their memory would take more than a quarter of it', () => {
  assert.equal(threadLimit(CHUNK_THREAD_BYTES, 4, 1 * GiB), 2);
  assert.equal(threadLimit(CHUNK_THREAD_BYTES, 8, 2 * GiB), 5);
  assert.equal(threadLimit(RESTORE_THREAD_BYTES, 8, 0.5 * GiB), 3);
});

test('always at least one thread, however little memory there is', () => {
  assert.equal(threadLimit(CHUNK_THREAD_BYTES, 4, 128 * 1024 * 1024), 1);
  assert.equal(threadLimit(CHUNK_THREAD_BYTES, 1, 0), 1);
});

test("scaled-out worker processes share the machine's chunk threads", () => {
  assert.equal(chunkThreadsPerWorker(2, threadLimit(CHUNK_THREAD_BYTES, 8, 1 * GiB)), 1);
  assert.equal(chunkThreadsPerWorker(2, threadLimit(CHUNK_THREAD_BYTES, 8, 24 * GiB)), 4);
});

/**
 * A new memory cgroup below this process's own, limited to `bytes`, or undefined where none can be made
 * (not root, no memory controller, a read-only hierarchy). Removed when the test ends.
 */
function memoryCgroup(t: TestContext, bytes: number): string | undefined {
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = own.find((l) => l.split(':')[1] === 'memory')?.split(':')[2];
  const candidates = [
    ...(v1 !== undefined ? [{ dir: path.join('/sys/fs/cgroup/memory', v1), limit: 'memory.limit_in_bytes' }] : []),
    { dir: path.join('/sys/fs/cgroup', own.find((l) => l.startsWith('0::'))?.slice(3) ?? '/'), limit: 'memory.max' },
  ];
  for (const { dir, limit } of candidates) {
    const group = path.join(dir, `coffer-test-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    try {
      fs.mkdirSync(group);
    } catch {
      continue;
    }
    t.after(() => fs.rmdirSync(group));
    try {
      fs.writeFileSync(path.join(group, limit), String(bytes));
      return group;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** `coffer ARGS` inside `group` (or outside any new one), with the threads it started by script. */
function countedRun(t: TestContext, args: string[], group?: string): Record<string, number> {
  const census = path.join(tempDir(t), 'census.json');
  const env = environment({ env: { NODE_OPTIONS: `--import ${CENSUS}`, WORKER_CENSUS: census } });
  const command = [process.execPath, MAIN, ...args];
  const r = group
    ? spawnSync('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', group, ...command], { env })
    : spawnSync(command[0]!, command.slice(1), { env });
  assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status} (${r.signal}): ${r.stderr}`);
  return JSON.parse(fs.readFileSync(census, 'utf8')) as Record<string, number>;
}

test('a backup and a restore in a small container start fewer workers than one per core, and work', (t) => {
  const limit = 300 * 1024 * 1024;
  const group = memoryCgroup(t, limit);
  if (!group) return t.skip('no memory cgroup can be made here (it takes root and a writable cgroup hierarchy)');
  if (os.availableParallelism() < 2) return t.skip('one core: one worker of each kind either way');
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  // Each file a full batch of its own (4 MiB), zstd cannot shrink them: a second worker starts beside a busy first.
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(source, `f${i}.bin`), seededBytes(`budget-${i}`, 4 * 1024 * 1024));
  ok(['init', '--repo', path.join(dir, 'free')]);
  ok(['init', '--repo', path.join(dir, 'small')]);

  const free = countedRun(t, ['backup', '--repo', path.join(dir, 'free'), source]);
  assert.equal(free['chunk-worker'], 2, JSON.stringify(free));
  const small = countedRun(t, ['backup', '--repo', path.join(dir, 'small'), source], group);
  assert.equal(small['chunk-worker'], 1, JSON.stringify(small));

  const restored = countedRun(t, ['restore', 'latest', '--repo', path.join(dir, 'small'), '--target', path.join(dir, 'restored')], group);
  assert.equal(restored['restore-worker'], 1, JSON.stringify(restored));
  assert.deepEqual(treeDifferences(source, path.join(dir, 'restored', source)), []);
});

test("the usable memory is the machine's, or a cgroup's limit below it", (t) => {
  assert.ok(usableMemory() <= os.totalmem());
  const limit = 300 * 1024 * 1024;
  const group = memoryCgroup(t, limit);
  if (!group) return t.skip('no memory cgroup can be made here (it takes root and a writable cgroup hierarchy)');
  const script = `import('${path.join(REPO_ROOT, 'src/engine/thread-budget.ts')}').then((m) => console.log(m.usableMemory()))`;
  const r = spawnSync('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', group, process.execPath, '-e', script], { encoding: 'utf8' });
  assert.equal(Number(r.stdout), limit, r.stderr);
  const doctor = spawnSync('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', group, process.execPath, MAIN, 'doctor'], { env: environment({}), encoding: 'utf8' });
  assert.match(doctor.stdout, /^ok {4}threads: backups read with 1 thread, restores write with 1 thread \(\d+ cores?, 300 MiB of memory \(its cgroup limit\)\)$/m);
});
