// The sources of a backup as a tree of path components: the directories above them and the sources
// themselves. Shared by the backup walk and the split of a scaled-out backup (scale-out/split.ts).
import path from 'node:path';
import { pathParts } from '../snapshot-view.ts';

/** The sources as a tree of path components: the directories above them and the sources themselves. */
export interface SourceTrie {
  readonly path: string;
  readonly children: Map<string, SourceTrie>;
  source: boolean;
}

/** Sources inside another source are left to the outer one (they are in its tree already). */
export function sourceTrie(paths: readonly string[]): SourceTrie {
  const root: SourceTrie = { path: '/', children: new Map(), source: false };
  for (const p of paths) {
    let at = root;
    for (const part of pathParts(p)) {
      if (at.source) break;
      let next = at.children.get(part);
      if (!next) at.children.set(part, (next = { path: path.join(at.path, part), children: new Map(), source: false }));
      at = next;
    }
    if (!at.source) {
      at.source = true;
      at.children.clear();
    }
  }
  return root;
}
