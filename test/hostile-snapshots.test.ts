// Snapshots written by someone else: malformed fields are skipped with a warning instead of breaking
// every listing, and control characters in names, hosts and tags never reach the terminal.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, ok, tempDir } from './helpers/cli.ts';
import { craftNode, Crafter } from './helpers/craft.ts';

const ESC = '\x1b';

test('snapshots with malformed fields are skipped with a warning; the others are listed', async (t) => {
  const repo = path.join(tempDir(t), 'repo');
  ok(['init', '--repo', repo]);
  const crafter = await Crafter.open(repo);
  const tree = crafter.tree([craftNode.fifo('f')]);
  const good = await crafter.snapshot(tree);
  const badTags = await crafter.snapshot(tree, { tags: 'x' });
  const noSummary = await crafter.snapshot(tree, { summary: undefined, host: 'no summary' });
  const badPaths = await crafter.snapshot(tree, { paths: [1, 2] });
  await crafter.close();
  const r = coffer(['snapshots', '--repo', repo]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(good.slice(0, 8)));
  assert.match(r.stderr, new RegExp(`skipping snapshots/${badTags}: .*its tags is missing or malformed`));
  assert.match(r.stderr, new RegExp(`skipping snapshots/${noSummary}: .*its summary is missing or malformed`));
  assert.match(r.stderr, new RegExp(`skipping snapshots/${badPaths}: .*its paths is missing or malformed`));
  assert.equal(coffer(['snapshots', '--repo', repo, '--json']).code, 0);
});

test('control characters in hosts, tags and names are printed escaped', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const crafter = await Crafter.open(repo);
  const id = await crafter.snapshot(crafter.tree([craftNode.fifo(`evil${ESC}[2J\nname`), craftNode.symlink('link', `${ESC}]0;owned\x07`)]), {
    host: `host${ESC}]0;title\x07`,
    tags: [`tag${ESC}[31m`, 'csi\u009b2J'],
  });
  await crafter.close();
  const outputs = [
    coffer(['snapshots', '--repo', repo]),
    coffer(['snapshots', '--repo', repo, '--json']),
    coffer(['ls', '--repo', repo, id, '-l']),
    coffer(['ls', '--repo', repo, id, '--json']),
    coffer(['restore', '--repo', repo, id, '--target', path.join(dir, 'out'), '--include', 'nothing-matches']),
    coffer(['ls', '--repo', repo, id, `/missing${ESC}[2J`]),
  ];
  for (const r of outputs) {
    const all = r.stdout + r.stderr;
    assert.ok(!all.includes(ESC) && !all.includes('\x07') && !all.includes('\u009b'), `raw control characters in:\n${JSON.stringify(all)}`);
  }
  assert.match(outputs[0]!.stdout, /host\\x1b\]0;title\\x07/);
  assert.match(outputs[2]!.stdout, /evil\\x1b\[2J\\x0aname/);
  assert.match(outputs[5]!.stderr, /^coffer: path \/missing\\x1b\[2J is not in the snapshot/);
});
