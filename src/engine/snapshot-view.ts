// A snapshot's trees as every reader sees them: the file system's root with each source at its full
// path (/home/ann/documents is home → ann → documents), whichever layout the snapshot was written in.
// Snapshots of Coffer 0.1.0 hold one node per source at the top, named by its last component; for them
// the directories above each source are made up here, in memory ("synthetic"), so ls, restore, diff,
// find and the parent lookup of a new backup work the same on old and new snapshots.
import crypto from 'node:crypto';
import path from 'node:path';
import type { Snapshot } from '../format/snapshot.ts';
import { NodeType, compareNames, type TreeNode } from '../format/tree.ts';
import { RepositoryError, type Repository } from '../repo/repository.ts';

/** Where trees come from: a repository, or a view that adds synthetic directories to it. */
export interface TreeSource {
  loadTree(id: Uint8Array): Promise<TreeNode[]>;
}

/** A path looked up in a snapshot: the node there (none for the root) and, for a directory, its tree. */
export interface FoundPath {
  /** Raw path below the root, components joined with '/', no leading slash ('' for the root). */
  readonly path: Buffer;
  readonly node?: TreeNode;
  readonly tree?: Buffer;
}

/** The names 0.1.0 gave its sources at the top of a snapshot: last components, made unique with -1, -2… */
export function legacyTopLevelNames(paths: readonly string[]): string[] {
  const used = new Set<string>();
  return paths.map((p) => {
    const base = path.basename(p);
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}-${i}`;
    used.add(name);
    return name;
  });
}

/** Path components of an absolute or snapshot-relative path ('.' and empty ones dropped). */
export function pathParts(p: string): string[] {
  return p.split('/').filter((part) => part !== '' && part !== '.');
}

interface Trie {
  readonly children: Map<string, Trie>;
  node?: TreeNode;
}

export class SnapshotView implements TreeSource {
  readonly snapshot: Snapshot;
  /** Id of the root tree (a synthetic one for a 0.1.0 snapshot of anything but "/"). */
  readonly root: Buffer;
  private readonly repo: Pick<Repository, 'loadTree'>;
  private readonly synthetic: Map<string, TreeNode[]>;
  /** 0.1.0 snapshots: top-level name → source path, so paths written the old way still resolve. */
  private readonly legacyNames: Map<string, string>;

  private constructor(repo: Pick<Repository, 'loadTree'>, snapshot: Snapshot, root: Buffer, synthetic: Map<string, TreeNode[]>, legacyNames: Map<string, string>) {
    this.repo = repo;
    this.snapshot = snapshot;
    this.root = root;
    this.synthetic = synthetic;
    this.legacyNames = legacyNames;
  }

  static async open(repo: Pick<Repository, 'loadTree'>, snapshot: Snapshot): Promise<SnapshotView> {
    const root = Buffer.from(snapshot.tree, 'hex');
    const legacy = snapshot.layout === undefined && !(snapshot.paths.length === 1 && snapshot.paths[0] === '/');
    if (!legacy) return new SnapshotView(repo, snapshot, root, new Map(), new Map());
    const top = new Map((await repo.loadTree(root)).map((n) => [n.name.toString('latin1'), n]));
    const names = legacyTopLevelNames(snapshot.paths);
    const trie: Trie = { children: new Map() };
    const legacyNames = new Map<string, string>();
    snapshot.paths.forEach((source, i) => {
      const parts = pathParts(source);
      const node = top.get(Buffer.from(names[i]!).toString('latin1'));
      if (parts.length === 0 || !node) return;
      legacyNames.set(names[i]!, source);
      let at = trie;
      for (const part of parts) {
        // A source inside another source is already in the outer one's tree.
        if (at.node) return;
        let next = at.children.get(part);
        if (!next) at.children.set(part, (next = { children: new Map() }));
        at = next;
      }
      at.node = { ...node, name: Buffer.from(parts[parts.length - 1]!) };
    });
    const synthetic = new Map<string, TreeNode[]>();
    const timeNs = BigInt(Date.parse(snapshot.time)) * 1_000_000n;
    const build = (t: Trie): Buffer => {
      const nodes: TreeNode[] = [];
      for (const [name, child] of t.children) {
        nodes.push(child.node ?? { type: NodeType.Dir, mode: 0o755, uid: 0, gid: 0, mtimeNs: timeNs, ctimeNs: timeNs, inode: 0n, device: 0n, links: 1, size: 0, name: Buffer.from(name), subtree: build(child) });
      }
      nodes.sort((a, b) => compareNames(a.name, b.name));
      // Named apart from every real tree id (those are keyed HMACs of a tree's encoding).
      const id = crypto.createHash('sha256').update('coffer synthetic tree\0').update(nodes.map((n) => `${n.name.toString('hex')}:${n.subtree?.toString('hex') ?? ''}`).join('/')).digest();
      synthetic.set(id.toString('hex'), nodes);
      return id;
    };
    return new SnapshotView(repo, snapshot, build(trie), synthetic, legacyNames);
  }

  async loadTree(id: Uint8Array): Promise<TreeNode[]> {
    return this.synthetic.get(Buffer.from(id).toString('hex')) ?? this.repo.loadTree(id);
  }

  /** A directory that exists only in this view: above the sources of a 0.1.0 snapshot; its metadata is made up. */
  isSynthetic(node: TreeNode): boolean {
    return node.type === NodeType.Dir && node.subtree !== undefined && this.synthetic.has(node.subtree.toString('hex'));
  }

  /**
   * The node at `p` ('/home/ann/documents'; '' or '/' is the root). In a 0.1.0 snapshot the old spelling
   * ('/documents/…', below the source's top-level name) is accepted too.
   */
  async find(p: string): Promise<FoundPath> {
    const parts = pathParts(p);
    const found = await this.walkTo(parts);
    if (!('missing' in found)) return found;
    const source = parts.length > 0 ? this.legacyNames.get(parts[0]!) : undefined;
    if (source !== undefined) {
      const translated = await this.walkTo([...pathParts(source), ...parts.slice(1)]);
      if (!('missing' in translated)) return translated;
    }
    const shown = `/${parts.slice(0, found.missing + 1).join('/')}`;
    if (found.notDir) throw new RepositoryError(`${shown} is not a directory in the snapshot`);
    const hint = found.missing === 0 ? ` (it holds ${this.snapshot.paths.join(', ')})` : '';
    throw new RepositoryError(`path ${shown} is not in the snapshot${hint}; list it with coffer ls`);
  }

  private async walkTo(parts: string[]): Promise<FoundPath | { missing: number; notDir?: boolean }> {
    let tree: Buffer = this.root;
    let node: TreeNode | undefined;
    for (const [i, part] of parts.entries()) {
      const name = Buffer.from(part);
      const next = (await this.loadTree(tree)).find((n) => n.name.equals(name));
      if (!next) return { missing: i };
      node = next;
      if (next.type === NodeType.Dir && next.subtree) tree = next.subtree;
      else if (i < parts.length - 1) return { missing: i, notDir: true };
      else return { path: Buffer.from(parts.join('/')), node: next };
    }
    return { path: Buffer.from(parts.join('/')), tree, ...(node ? { node } : {}) };
  }
}
