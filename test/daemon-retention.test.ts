// The daemon applies a plan's retention after each successful run, to the plan's own snapshots only,
// and prunes every pruneEvery-th successful run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { jsonLines, ok, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';

test('retention after each run keeps the policy over the plan\'s own snapshots; prune every third run frees the data', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const photos = path.join(dir, 'photos');
  const music = path.join(dir, 'music');
  for (const d of [photos, music]) fs.mkdirSync(d);
  ok(['init', '--repo', repo]);
  // Another plan on the same repository and host backs up a superset of photos' paths: a filter that
  // matches snapshots *including* photos' path would sweep its snapshots in too.
  const daemon = await DaemonProcess.start(t, {
    config: [
      'plans:',
      '  photos:',
      `    repos: [${repo}]`,
      `    paths: [${photos}]`,
      '    retention: { keepLast: 2 }',
      '    pruneEvery: 3',
      '  everything:',
      `    repos: [${repo}]`,
      `    paths: [${photos}, ${music}]`,
      '',
    ].join('\n'),
  });
  const runToEnd = async (plan: string): Promise<number> => {
    const job = await daemon.run(plan);
    await daemon.waitFor(new RegExp(`job ${job} \\(plan ${plan}\\) completed`));
    return job;
  };
  for (let i = 0; i < 3; i++) await runToEnd('everything');
  for (let i = 0; i < 3; i++) {
    // Each run holds data of its own: what the forgotten first snapshot held is unused afterwards.
    fs.writeFileSync(path.join(photos, 'current.raw'), crypto.randomBytes(300_000));
    const job = await runToEnd('photos');
    await daemon.waitFor(new RegExp(`job ${job} \\(plan photos\\): retention forgot ${i < 2 ? '0 snapshots\\n' : '1 snapshot, prune freed [1-9]\\d* bytes\\n'}`));
  }
  const snapshots = jsonLines<{ paths: string[] }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.equal(snapshots.filter((s) => s.paths.length === 1).length, 2, 'photos keeps its last 2');
  assert.equal(snapshots.filter((s) => s.paths.length === 2).length, 3, "the other plan's snapshots are untouched");
  assert.match(ok(['check', '--repo', repo]).stdout, /no errors were found/);
  assert.equal((await daemon.stop()).code, 0);
});

test('a retention that fails leaves the run successful and says how to apply it by hand', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'a');
  ok(['init', '--repo', repo]);
  const daemon = await DaemonProcess.start(t, {
    config: `plans:\n  docs:\n    repos: [${repo}]\n    paths: [${source}]\n    retention: { keepLast: 1 }\n`,
  });
  const job = await daemon.run('docs');
  await daemon.waitFor(new RegExp(`job ${job} \\(plan docs\\) completed`));
  // forget cannot write its deletion record: the folder is made immutable (root bypasses modes, not this).
  const deletions = path.join(repo, 'deletions');
  fs.mkdirSync(deletions, { recursive: true });
  if (spawnSync('chattr', ['+i', deletions]).status !== 0) return t.skip('chattr +i is not supported on this file system');
  try {
    fs.writeFileSync(path.join(source, 'b.txt'), 'b');
    const second = await daemon.run('docs');
    await daemon.waitFor(new RegExp(`job ${second} \\(plan docs\\) completed`));
    await daemon.waitFor(new RegExp(`job ${second} \\(plan docs\\): retention failed: .*; the snapshot is kept, coffer forget --plan docs applies the policy by hand`));
    assert.equal((await daemon.job(second))?.state, 'completed');
  } finally {
    spawnSync('chattr', ['-i', deletions]);
  }
  assert.equal((await daemon.stop()).code, 0);
});
