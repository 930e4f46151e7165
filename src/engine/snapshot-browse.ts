// Reading a snapshot a piece at a time, for the dashboard's browser: one directory per call (a page of
// its entries in the order a person expects, note-2 before note-10; a page is found by its cursor
// without sending the others), and a diff with a bounded list of changes and complete counts.
import { NodeType, compareNames, type TreeNode } from '../format/tree.ts';
import { diffTrees, type ChangeKind } from './diff.ts';
import { RepositoryError } from '../repo/repository.ts';
import type { SnapshotView } from './snapshot-view.ts';

export type EntryType = 'dir' | 'file' | 'symlink' | 'other';

export interface BrowseEntry {
  readonly name: string;
  readonly type: EntryType;
  readonly size: number;
  /** Modification time, epoch ms. */
  readonly mtime: number;
  readonly mode: number;
  readonly target?: string;
}

export interface DirectoryPage {
  /** The directory, '/'-prefixed. */
  readonly path: string;
  readonly entries: BrowseEntry[];
  /** Give as `after` to get the next page; absent on the last one. */
  readonly next?: string;
  /** Entries in the whole directory. */
  readonly total: number;
  /** Where this page starts among the entries listed (those matching the filter, if one was given). */
  readonly offset: number;
  /** The filter applied, echoed (an agent older than its server would ignore it: the server checks). */
  readonly filter?: string;
  /** With a filter: the entries whose name holds it. */
  readonly matches?: number;
}

/** The most entries one page may hold. */
export const MAX_PAGE = 2000;

export function entryType(type: NodeType): EntryType {
  return type === NodeType.Dir ? 'dir' : type === NodeType.File ? 'file' : type === NodeType.Symlink ? 'symlink' : 'other';
}

function entryOf(node: TreeNode): BrowseEntry {
  return {
    name: node.name.toString('utf8'),
    type: entryType(node.type),
    size: node.type === NodeType.File ? node.size : 0,
    mtime: Number(node.mtimeNs / 1_000_000n),
    mode: node.mode,
    ...(node.type === NodeType.Symlink && node.linkTarget ? { target: node.linkTarget.toString('utf8') } : {}),
  };
}

const naturalOrder = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** A directory's entries as a file browser shows them: numbers by value, any case together; raw bytes break ties, so the order is total and a cursor finds its place. */
function browseOrder(a: { readonly name: Buffer; readonly text: string }, b: { readonly name: Buffer; readonly text: string }): number {
  return naturalOrder.compare(a.text, b.text) || compareNames(a.name, b.name);
}

/** The longest filter accepted: a name is at most this long on common file systems anyway. */
export const MAX_FILTER = 255;

/**
 * Entries of the directory at `path` of a snapshot, after the name `after`, at most `limit`; with a
 * `filter`, only those whose name holds it (any case), so one file among 100 000 is found in one request.
 */
export async function listDirectory(view: SnapshotView, path: string, options: { after?: string; limit: number; filter?: string }): Promise<DirectoryPage> {
  const limit = Math.max(1, Math.min(MAX_PAGE, options.limit));
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const display = `/${parts.join('/')}`;
  const found = await view.find(path).catch((err: unknown) => {
    throw err instanceof RepositoryError ? new BrowseError(`${display} is not in the snapshot`) : err;
  });
  if (!found.tree) throw new BrowseError(`${display} is not a directory in the snapshot`);
  const all = await view.loadTree(found.tree);
  const filter = options.filter?.slice(0, MAX_FILTER);
  const needle = filter?.toLowerCase();
  const named = all.map((node) => ({ node, name: node.name, text: node.name.toString('utf8') }));
  const listed = (needle ? named.filter((n) => n.text.toLowerCase().includes(needle)) : named).sort(browseOrder);
  // The page starts at the first name after the cursor, in the same order.
  let start = 0;
  if (options.after !== undefined) {
    const after = { name: Buffer.from(options.after), text: options.after };
    let lo = 0;
    let hi = listed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (browseOrder(listed[mid]!, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const slice = listed.slice(start, start + limit);
  const more = start + limit < listed.length;
  return {
    path: display,
    entries: slice.map((n) => entryOf(n.node)),
    ...(more ? { next: slice[slice.length - 1]!.text } : {}),
    total: all.length,
    offset: start,
    ...(filter !== undefined ? { filter, matches: listed.length } : {}),
  };
}

export interface DiffSummary {
  readonly changes: { kind: ChangeKind; path: string; type: EntryType; size: number }[];
  readonly counts: Record<ChangeKind, number>;
  readonly truncated: boolean;
}

/** The changes from snapshot `a` to snapshot `b`: the first `limit` listed, all of them counted. */
export async function diffSummary(a: SnapshotView, b: SnapshotView, limit: number, signal?: AbortSignal): Promise<DiffSummary> {
  const counts: Record<ChangeKind, number> = { '+': 0, '-': 0, M: 0, T: 0, U: 0 };
  const changes: DiffSummary['changes'] = [];
  for await (const c of diffTrees(a, b)) {
    signal?.throwIfAborted();
    counts[c.kind]++;
    if (changes.length < limit) changes.push({ kind: c.kind, path: c.path, type: entryType(c.type), size: c.size });
  }
  const total = Object.values(counts).reduce((x, y) => x + y, 0);
  return { changes, counts, truncated: total > changes.length };
}

export class BrowseError extends Error {
  override name = 'BrowseError';
}
