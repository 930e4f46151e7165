// Ctrl-C and SIGTERM stop a restore within moments, with exit 130, and leave no half-written file
// under its real name: every file the restore put in place is whole, the rest are gone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cofferAsync, ok, tempDir } from './helpers/cli.ts';
import { craftNode, Crafter } from './helpers/craft.ts';
import { seededBytes } from './helpers/tree.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the restore to start');
    await sleep(50);
  }
}

/** Every name below `dir`. */
function allNames(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String);
}

test('Ctrl-C stops a restore of file data at once: exit 130, only whole files under their names', async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(source, `part-${i}.bin`), seededBytes(`interrupt ${i}`, 4 << 20));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  const target = path.join(dir, 'target');
  // 32 MiB at 2 MiB/s: the restore is still reading when the signal comes.
  const run = cofferAsync(['restore', '--repo', repo, 'latest', '--target', target, '--limit-download', '2M']);
  // Started: something is in the target (whatever layout the snapshot has).
  await until(() => fs.existsSync(target) && fs.readdirSync(target).length > 0);
  await sleep(1000);
  const signalled = performance.now();
  run.child.kill('SIGINT');
  const r = await run.done;
  const seconds = (performance.now() - signalled) / 1000;
  t.diagnostic(`the restore stopped ${seconds.toFixed(2)} s after SIGINT`);
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /interrupting: stopping cleanly \(Ctrl-C again to quit at once\)/);
  assert.match(r.stderr, /interrupted: \d+ files? restored completely; nothing half written is left/);
  assert.ok(seconds < 5, `took ${seconds} s to stop`);
  const names = allNames(target);
  assert.ok(!names.some((n) => n.includes('.coffer-restore-')), `temporary files left: ${names}`);
  // The snapshot holds the source at its full path.
  for (const name of names.filter((n) => n.endsWith('.bin'))) {
    assert.ok(fs.readFileSync(path.join(target, name)).equals(fs.readFileSync(path.join('/', name))), `${name} is not whole`);
  }
});

test('SIGTERM stops a restore busy with symlinks alone, and says "terminated"', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const crafter = await Crafter.open(repo);
  const links = crafter.tree(Array.from({ length: 20_000 }, (_, i) => craftNode.symlink(`l${String(i).padStart(5, '0')}`, `target-${i}`)));
  const id = await crafter.snapshot(crafter.tree(Array.from({ length: 20 }, (_, i) => craftNode.dir(`d${i}`, links))));
  await crafter.close();
  const target = path.join(dir, 'target');
  const run = cofferAsync(['restore', '--repo', repo, id, '--target', target]);
  await until(() => fs.existsSync(path.join(target, 'd0')));
  await sleep(500);
  const signalled = performance.now();
  run.child.kill('SIGTERM');
  const r = await run.done;
  const seconds = (performance.now() - signalled) / 1000;
  t.diagnostic(`the restore stopped ${seconds.toFixed(2)} s after SIGTERM`);
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /terminated: stopping cleanly/);
  assert.doesNotMatch(r.stderr, /Ctrl-C again/);
  assert.ok(seconds < 5, `took ${seconds} s to stop`);
  const names = allNames(target);
  assert.ok(names.length < 400_020, 'the restore stopped before the end');
  assert.ok(!names.some((n) => n.includes('.coffer-restore-')), 'no temporary names are left');
});
