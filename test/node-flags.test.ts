// Coffer's Node flags (src/node-flags.ts: V8's young generation capped) reach the process that runs
// Coffer however it is started: V8 takes them only on the command line. A command started as a user
// starts it — bin/coffer.js by its shebang — reads its own command line from /proc (runningCommandLine).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BACKUP_WORKER_SEMI_SPACE_MB, NODE_ENVIRONMENT, NODE_FLAGS } from '../src/node-flags.ts';
import { initRepository } from '../src/repo/repository.ts';
import { startLocalWorkers, stopLocalWorkers } from '../src/scale-out/local-workers.ts';
import { MemoryShardQueue } from '../src/scale-out/shard-queue.ts';
import { LocalStore } from '../src/store/local.ts';
import { REPO_ROOT, runningCommandLine, runningProcess, tempDir } from './helpers/cli.ts';

const LAUNCHER = path.join(REPO_ROOT, 'bin/coffer.js');
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';
const SEMI_SPACE_CAP = /^--max-semi-space-size=\d+$/;

test('Coffer starts with its young generation capped', () => {
  assert.ok(NODE_FLAGS.some((flag) => SEMI_SPACE_CAP.test(flag)), NODE_FLAGS.join(' '));
});

test("bin/coffer.js starts Node with the flags through sh, which BusyBox has too (its env has no -S)", () => {
  const [shebang, start] = fs.readFileSync(LAUNCHER, 'utf8').split('\n');
  assert.equal(shebang, '#!/bin/sh');
  const environment = Object.entries(NODE_ENVIRONMENT).map(([name, value]) => `${name}=\${${name}:-${value}}`);
  assert.equal(start, `":" //; ${environment.join(' ')} exec node ${NODE_FLAGS.join(' ')} "$0" "$@"`);
});

test('coffer started by a minimal sh (dash, BusyBox) with arguments that hold spaces and quotes', (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, "a repo's place");
  const shells = ['dash', 'busybox'].filter((sh) => spawnSync(sh, ['-c', 'true']).status === 0);
  assert.ok(shells.includes('dash'), 'dash is /bin/sh on Debian');
  for (const [i, sh] of shells.entries()) {
    const args = sh === 'busybox' ? ['sh', LAUNCHER] : [LAUNCHER];
    const r = spawnSync(sh, [...args, 'init', '--repo', `${repo}-${i}`], { env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${SYSTEM_PATH}`, COFFER_PASSWORD: 'pass' }, encoding: 'utf8' });
    assert.equal(r.status, 0, `${sh}: ${r.stderr}`);
    assert.ok(fs.existsSync(path.join(`${repo}-${i}`, 'config')), sh);
  }
});

test('coffer started by its shebang on Node 24 runs with the flags and the environment; a variable the user set wins', (t) => {
  const nodePath = `${path.dirname(process.execPath)}:${SYSTEM_PATH}`;
  const { argv, environment } = runningProcess(t, LAUNCHER, nodePath);
  assert.deepEqual(argv.slice(1, 1 + NODE_FLAGS.length), NODE_FLAGS, argv.join(' '));
  assert.equal(argv[1 + NODE_FLAGS.length], LAUNCHER);
  for (const [name, value] of Object.entries(NODE_ENVIRONMENT)) assert.equal(environment.get(name), value, name);
  assert.equal(runningProcess(t, LAUNCHER, nodePath, { MALLOC_ARENA_MAX: '4' }).environment.get('MALLOC_ARENA_MAX'), '4');
});

const systemNode = spawnSync('node', ['--version'], { env: { PATH: SYSTEM_PATH }, encoding: 'utf8' }).stdout?.trim() ?? '';
const olderSystemNode = /^v(\d+)\./.test(systemNode) && Number(/^v(\d+)\./.exec(systemNode)![1]) < 24;

test('coffer started by its shebang on an older system Node: the bundled Node 24 it re-runs on gets the flags', { skip: olderSystemNode ? false : `the system Node is ${systemNode || 'missing'}, not older than 24` }, (t) => {
  const argv = runningCommandLine(t, LAUNCHER, SYSTEM_PATH);
  assert.match(argv[0]!, /node_modules\/node\/bin\/node$/, 'the bundled Node runs coffer');
  assert.deepEqual(argv.slice(1, 1 + NODE_FLAGS.length), NODE_FLAGS, argv.join(' '));
});

test("a scale-out worker process is forked with the flags, though this process has none", async (t) => {
  assert.ok(!process.execArgv.some((a) => SEMI_SPACE_CAP.test(a)), 'the test runs without the cap');
  const repo = path.join(tempDir(t), 'repo');
  await initRepository([new LocalStore(repo)], 'pass');
  const queue = new MemoryShardQueue();
  t.after(() => queue.stop());
  const workers = startLocalWorkers(queue, 1, { locations: [repo], password: 'pass', capacity: 1, heartbeatMs: 1000 });
  t.after(() => stopLocalWorkers(workers));
  // The fork has returned once the child has exec'd Node: its command line is the worker's own.
  const argv = fs.readFileSync(`/proc/${workers[0]!.child.pid}/cmdline`, 'utf8').split('\0');
  assert.deepEqual(argv.slice(1, 1 + NODE_FLAGS.length), NODE_FLAGS, argv.join(' '));
  const environment = fs.readFileSync(`/proc/${workers[0]!.child.pid}/environ`, 'utf8').split('\0');
  for (const [name, value] of Object.entries(NODE_ENVIRONMENT)) if (!(name in process.env)) assert.ok(environment.includes(`${name}=${value}`), name);
});

test("a backup's old generation grows by 30 % past what survived, not V8's ~3 ×", () => {
  // Long-lived objects (~24 MB), then per-round garbage that survives a few young collections, as the
  // backup's per-file objects do: the committed heap's peak, with and without the backup's limit.
  const script = `
    import v8 from 'node:v8';
    import { limitHeapsForBackup } from ${JSON.stringify(path.join(REPO_ROOT, 'src/node-flags.ts'))};
    if (process.argv[1] === 'backup') limitHeapsForBackup();
    const live = [];
    for (let i = 0; i < 300; i++) live.push(new Array(1e4).fill(i));
    const recent = [];
    let peak = 0;
    for (let round = 0; round < 600; round++) {
      recent.push(Array.from({ length: 50 }, () => new Array(1000).fill(round)));
      if (recent.length > 20) recent.shift();
      peak = Math.max(peak, v8.getHeapStatistics().total_heap_size);
    }
    console.log(peak);
  `;
  const peak = (mode: string): number => {
    const run = spawnSync(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', script, mode], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    return Number(run.stdout.trim());
  };
  const limited = peak('backup');
  const unlimited = peak('other');
  assert.ok(limited < unlimited * 0.75, `peak heap ${limited} bytes with the backup's limit, ${unlimited} without`);
});

test("a backup's worker isolates get small semi-spaces; its main isolate keeps those of its command line", () => {
  // The same churn of young objects, many surviving a scavenge or two, in the main isolate and in three
  // workers started after, one at a time: the largest new space each reached (a worker's varies from run to
  // run, so the median of three).
  const churn = `let peak = 0; const keep = [];
    for (let i = 0; i < 20000; i++) {
      keep.push(new Array(500).fill(i));
      if (keep.length > 1000) keep.shift();
      peak = Math.max(peak, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
    }`;
  const script = `
    import { once } from 'node:events';
    import v8 from 'node:v8';
    import { Worker } from 'node:worker_threads';
    import { limitHeapsForBackup } from ${JSON.stringify(path.join(REPO_ROOT, 'src/node-flags.ts'))};
    if (process.argv[1] === 'backup') limitHeapsForBackup();
    const main = new Function('v8', ${JSON.stringify(churn)} + '; return peak;')(v8);
    const workers = [];
    for (let i = 0; i < 3; i++) {
      const worker = new Worker("const v8 = process.getBuiltinModule('node:v8'); " + ${JSON.stringify(churn)} + "; process.getBuiltinModule('node:worker_threads').parentPort.postMessage(peak);", { eval: true });
      const [peak] = await once(worker, 'message');
      workers.push(peak);
    }
    console.log(JSON.stringify({ main, worker: workers.sort((a, b) => a - b)[1] }));
  `;
  const newSpaces = (mode: string): { main: number; worker: number } => {
    const run = spawnSync(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', script, mode], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    return JSON.parse(run.stdout) as { main: number; worker: number };
  };
  const MiB = 1024 * 1024;
  const backup = newSpaces('backup');
  const other = newSpaces('other');
  assert.ok(backup.worker <= 6 * BACKUP_WORKER_SEMI_SPACE_MB * MiB, `a backup's workers reached ${backup.worker} bytes of new space (median)`);
  assert.ok(other.worker > 14 * MiB, `another command's workers reached ${other.worker} bytes`);
  assert.ok(backup.main > 14 * MiB && other.main > 14 * MiB, `main isolates: ${backup.main} and ${other.main} bytes`);
});
