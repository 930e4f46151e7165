// `coffer dump`: one file's bytes, or a directory as a tar stream, written to a stream (stdout).
import type { Writable } from 'node:stream';
import { BlobType } from '../format/pack.ts';
import { NodeType, contentIds, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repo/repository.ts';
import type { TreeSource } from './snapshot-view.ts';
import { TarWriter, type TarEntryType } from './tar-writer.ts';
import { walkTree } from './tree-walk.ts';

/** A file's contents, chunk by chunk, each verified on read. */
export async function* fileContents(repo: Repository, node: TreeNode): AsyncGenerator<Buffer> {
  for (const id of contentIds(node)) yield await repo.readBlob(id, BlobType.Data);
}

export async function dumpFile(repo: Repository, node: TreeNode, out: Writable): Promise<void> {
  for await (const chunk of fileContents(repo, node)) {
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
  }
}

const TYPES: Partial<Record<number, TarEntryType>> = { [NodeType.Dir]: 'dir', [NodeType.Symlink]: 'symlink', [NodeType.Fifo]: 'fifo', [NodeType.File]: 'file' };
const SLASH = Buffer.from('/');

/** Adds one node to a tar archive as `name` (raw bytes); `links` remembers hard-linked files already written. */
async function addEntry(tar: TarWriter, repo: Repository, name: Buffer, node: TreeNode, links: Map<string, Buffer>): Promise<void> {
  const type = TYPES[node.type];
  // Devices and sockets cannot be recreated from a tar by an unprivileged user; they are left out.
  if (!type) return;
  const meta = { name: type === 'dir' ? Buffer.concat([name, SLASH]) : name, mode: node.mode, uid: node.uid, gid: node.gid, mtimeNs: node.mtimeNs };
  if (type === 'file' && node.links > 1) {
    const key = `${node.device}:${node.inode}`;
    const first = links.get(key);
    if (first) {
      await tar.entry({ ...meta, type: 'link', linkname: first });
      return;
    }
    links.set(key, meta.name);
  }
  if (type === 'file') await tar.entry({ ...meta, type, size: node.size }, fileContents(repo, node));
  else await tar.entry({ ...meta, type, ...(type === 'symlink' ? { linkname: node.linkTarget ?? Buffer.alloc(0) } : {}) });
}

/** Writes the directory `tree` as a tar archive; entries are named `root/…` with their raw bytes. */
export async function dumpTar(repo: Repository, trees: TreeSource, tree: Buffer, root: Buffer, out: Writable): Promise<void> {
  const tar = new TarWriter(out);
  const links = new Map<string, Buffer>();
  const prefix = root.length === 0 ? root : Buffer.concat([root, SLASH]);
  for await (const { path, node } of walkTree(trees, tree)) await addEntry(tar, repo, Buffer.concat([prefix, path]), node, links);
  await tar.finish();
}

/** Writes several nodes (files, or directories with everything below them) as one tar archive, each under its own name. */
export async function dumpSelectionTar(repo: Repository, trees: TreeSource, items: readonly { readonly name: string; readonly node: TreeNode }[], out: Writable): Promise<void> {
  const tar = new TarWriter(out);
  const links = new Map<string, Buffer>();
  const work = (async () => {
    for (const { name, node } of items) {
      const prefix = Buffer.from(name);
      await addEntry(tar, repo, prefix, node, links);
      if (node.type === NodeType.Dir && node.subtree) {
        for await (const { path, node: below } of walkTree(trees, node.subtree)) await addEntry(tar, repo, Buffer.concat([prefix, SLASH, path]), below, links);
      }
    }
    await tar.finish();
  })();
  // A reader that goes away (the download was cancelled) closes `out` without an error: stop then, not
  // at a 'drain' that never comes.
  const closed = new Promise<never>((_, reject) => out.once('close', () => reject(new Error('the reader of the archive went away'))));
  closed.catch(() => {});
  await Promise.race([work, closed]);
}
