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

/** Writes the directory `tree` as a tar archive; entries are named `root/…` with their raw bytes. */
export async function dumpTar(repo: Repository, trees: TreeSource, tree: Buffer, root: Buffer, out: Writable): Promise<void> {
  const tar = new TarWriter(out);
  const links = new Map<string, Buffer>();
  const prefix = root.length === 0 ? root : Buffer.concat([root, SLASH]);
  for await (const { path, node } of walkTree(trees, tree)) {
    const type = TYPES[node.type];
    // Devices and sockets cannot be recreated from a tar by an unprivileged user; they are left out.
    if (!type) continue;
    const name = Buffer.concat([prefix, path, type === 'dir' ? SLASH : Buffer.alloc(0)]);
    const meta = { name, mode: node.mode, uid: node.uid, gid: node.gid, mtimeNs: node.mtimeNs };
    if (type === 'file' && node.links > 1) {
      const key = `${node.device}:${node.inode}`;
      const first = links.get(key);
      if (first) {
        await tar.entry({ ...meta, type: 'link', linkname: first });
        continue;
      }
      links.set(key, name);
    }
    if (type === 'file') await tar.entry({ ...meta, type, size: node.size }, fileContents(repo, node));
    else await tar.entry({ ...meta, type, ...(type === 'symlink' ? { linkname: node.linkTarget ?? Buffer.alloc(0) } : {}) });
  }
  await tar.finish();
}
