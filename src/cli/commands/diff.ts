import { Command } from 'commander';
import { diffTrees } from '../../engine/diff.ts';
import { nodeTypeName } from '../../format/tree.ts';
import { formatBytes } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';
import { openSnapshot, splitSnapshotPath } from '../snapshot-arg.ts';
import type { SnapshotView } from '../../engine/snapshot-view.ts';
import { UsageError } from '../exit-codes.ts';

/** The snapshot and the directory that SNAP[:PATH] names. */
async function side(repo: Parameters<typeof openSnapshot>[0], arg: string): Promise<{ id: string; view: SnapshotView; tree: Buffer; path: Buffer }> {
  const { ref, subpath } = splitSnapshotPath(arg);
  const { stored, view } = await openSnapshot(repo, ref);
  const found = await view.find(subpath);
  if (!found.tree) throw new UsageError(`${arg} is not a directory; diff compares directories`);
  return { id: stored.id, view, tree: found.tree, path: found.path };
}

export function diffCommand(): Command {
  return addRepoOptions(new Command('diff').description('show what changed between two snapshots (+ added, - removed, M modified, T type changed, U metadata only)'))
    .argument('<snapshot1>', 'older snapshot (SNAP:/path compares one directory)')
    .argument('<snapshot2>', 'newer snapshot (SNAP:/path)')
    .action(async (first: string, second: string, options: RepoOptions) => {
      await withRepository(options, true, async (repo) => {
      const a = await side(repo, first);
      const b = await side(repo, second);
      const counts = { '+': 0, '-': 0, M: 0, T: 0, U: 0 };
      let bytesAdded = 0;
      let bytesRemoved = 0;
      for await (const change of diffTrees(a.view, b.view, a.tree, b.tree, b.path)) {
        counts[change.kind]++;
        if (change.kind === '+') bytesAdded += change.size;
        if (change.kind === '-') bytesRemoved += change.size;
        if (options.json) printJson({ type: 'change', change: change.kind, path: change.path, nodeType: nodeTypeName(change.type), size: change.size });
        else printLine(`${change.kind}    ${change.path}`);
      }
      if (options.json) printJson({ type: 'summary', from: a.id, to: b.id, added: counts['+'], removed: counts['-'], modified: counts.M, typeChanged: counts.T, metadataChanged: counts.U, bytesAdded, bytesRemoved });
      else {
        printLine();
        printLine(`${a.id.slice(0, 8)} → ${b.id.slice(0, 8)}: ${counts['+']} added (${formatBytes(bytesAdded)}), ${counts['-']} removed (${formatBytes(bytesRemoved)}), ${counts.M} modified, ${counts.T} changed type, ${counts.U} metadata only`);
      }
      });
    });
}
