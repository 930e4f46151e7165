// A generated snapshot of many files, written straight into a real repository (a backup of 100 000 files
// from a disk takes minutes here; this takes seconds): directories of the sizes asked for, each file with
// its own small data blob, so the index holds one entry per file as a backup's would. For the snapshot
// browser's functional test and its benchmark.
import type { TreeNode } from '../../src/format/tree.ts';
import { Crafter, craftNode } from './craft.ts';

export interface WideDirectory {
  /** Below the snapshot's source, e.g. "photos" or "projects/p042". */
  readonly path: string;
  readonly files: number;
}

export interface WideSnapshot {
  readonly id: string;
  /** The source's path: the snapshot holds it at this full path. */
  readonly source: string;
  readonly totalFiles: number;
}

/** Zero-padded, so names sort as numbers do (the tree's own order is by bytes). */
export function wideFileName(i: number, count: number): string {
  return `file-${String(i).padStart(String(count - 1).length, '0')}.txt`;
}

/** Writes a snapshot of `source` (absolute) holding `directories` and one small file at its top; `repoDir` must be an initialised local repository. */
export async function craftWideSnapshot(repoDir: string, source: string, directories: readonly WideDirectory[]): Promise<WideSnapshot> {
  const crafter = await Crafter.open(repoDir);
  try {
    const mtime = { mtimeNs: BigInt(Date.parse('2026-11-20T09:30:00Z')) * 1_000_000n };
    let totalFiles = 0;
    let totalBytes = 0;
    const file = (name: string, text: string): TreeNode => {
      const bytes = Buffer.from(text);
      totalFiles++;
      totalBytes += bytes.length;
      return craftNode.file(name, [crafter.data(bytes)], bytes.length, mtime);
    };
    // A directory's subtree: its own files and the directories below it, built from the leaves up.
    interface Dir {
      files: number;
      children: Map<string, Dir>;
    }
    const top: Dir = { files: 0, children: new Map() };
    for (const d of directories) {
      let at = top;
      for (const part of d.path.split('/').filter(Boolean)) {
        let next = at.children.get(part);
        if (!next) at.children.set(part, (next = { files: 0, children: new Map() }));
        at = next;
      }
      at.files += d.files;
    }
    const build = (dir: Dir, path: string): TreeNode[] => {
      const nodes: TreeNode[] = [];
      for (let i = 0; i < dir.files; i++) nodes.push(file(wideFileName(i, dir.files), `${path}/${wideFileName(i, dir.files)}\n`));
      for (const [name, child] of dir.children) nodes.push(craftNode.dir(name, crafter.tree(build(child, `${path}/${name}`)), mtime));
      return nodes;
    };
    const rootNodes = [...build(top, source), file('README.txt', 'a generated snapshot for the dashboard\n')];
    // Up from the source to the file system's root, as a backup of an absolute path stores it.
    let tree = crafter.tree(rootNodes);
    const parts = source.split('/').filter(Boolean);
    for (let i = parts.length - 1; i >= 0; i--) tree = crafter.tree([craftNode.dir(parts[i]!, tree, mtime)]);
    const dirs = directories.length + parts.length;
    const id = await crafter.snapshot(tree, {
      host: 'files-host',
      user: 'ann',
      paths: [source],
      program: 'coffer generated',
      summary: { filesNew: totalFiles, filesChanged: 0, filesUnmodified: 0, dirs, totalFiles, totalBytes, dataBlobs: totalFiles, treeBlobs: dirs + 1, bytesAdded: totalBytes, warnings: 0, durationMs: 0 },
    });
    return { id, source, totalFiles };
  } finally {
    await crafter.close();
  }
}
