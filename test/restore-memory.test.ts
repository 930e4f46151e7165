// What a restore holds in memory: a directory's entries only while the walk is in it, so memory grows
// with the depth of the tree, not with its size. Issue 12: the kernel tree's restore peaked at 631 MiB
// against restic's 157, and its main heap still held the entries of every directory it had passed.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { TreeNode } from '../src/format/tree.ts';
import { RestoreRun } from '../src/engine/restore/restore.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { ok, PASSWORD, tempDir } from './helpers/cli.ts';
import { writeTree } from './helpers/tree.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

test('a restore keeps the entries of a directory only while the walk is in it', async (t) => {
  const dir = tempDir(t);
  const directories = 40;
  const files: Record<string, string> = {};
  for (let i = 0; i < directories; i++) files[`d${i}/f`] = `file ${i}\n`;
  const source = writeTree(path.join(dir, 'source'), files);
  const repoDir = path.join(dir, 'repo');
  ok(['init', '--repo', repoDir]);
  ok(['backup', '--repo', repoDir, source]);

  const repo = await Repository.open([new LocalStore(repoDir)], PASSWORD);
  t.after(() => repo.close());
  await repo.loadIndex();
  const [snapshot] = await repo.listSnapshots();
  // Every directory's entries as the restore gets them, watched through weak references: before each
  // directory is loaded, count those of earlier ones that are still reachable.
  const loaded: WeakRef<TreeNode[]>[] = [];
  let mostAlive = 0;
  const trees = {
    loadTree: async (id: Uint8Array): Promise<TreeNode[]> => {
      // A task of its own, so that nothing is kept alive for the current one (WeakRef semantics).
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      mostAlive = Math.max(mostAlive, loaded.filter((ref) => ref.deref() !== undefined).length);
      const nodes = await repo.loadTree(id);
      loaded.push(new WeakRef(nodes));
      return nodes;
    },
  };
  const view = await SnapshotView.open(trees, snapshot!.snapshot);
  // The CLI and the agent always give a restore a signal (Ctrl-C, cancel from the dashboard).
  const run = new RestoreRun(repo, { target: path.join(dir, 'target'), signal: new AbortController().signal });
  const result = await run.run(view, await view.find(''));
  assert.equal(result.files, directories);
  assert.deepEqual(result.errors, []);

  // The source sits some levels below the root: at most those directories (and the one being left) are alive.
  const depth = path.resolve(source).split('/').length + 1;
  assert.ok(loaded.length > directories, `directories loaded: ${loaded.length}`);
  assert.ok(mostAlive <= depth + 1, `entries of ${mostAlive} directories alive at once (the tree is ${depth} deep, ${loaded.length} loaded)`);
});
