// `coffer dump`: one file's bytes, or a directory as a tar stream, written to a stream (stdout).
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BlobType } from '../format/pack.ts';
import { NodeType, contentIds, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repo/repository.ts';
import { nsToDate } from './fs-meta.ts';
import type { TreeSource } from './snapshot-view.ts';
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

function header(name: string, node: TreeNode): tar.Header {
  return {
    ...({} as tar.Header),
    name,
    mode: node.mode,
    uid: node.uid,
    gid: node.gid,
    mtime: nsToDate(node.mtimeNs),
  };
}

/** Writes the directory `tree` as a tar archive; entries are named `root/…`. */
export async function dumpTar(repo: Repository, trees: TreeSource, tree: Buffer, root: string, out: Writable): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, out);
  const links = new Map<string, string>();
  const prefix = root === '' ? '' : `${root}/`;
  for await (const { path, node } of walkTree(trees, tree)) {
    const name = prefix + path.toString('utf8');
    const h = header(name, node);
    switch (node.type) {
      case NodeType.Dir:
        pack.entry({ ...h, type: 'directory' });
        break;
      case NodeType.Symlink:
        pack.entry({ ...h, type: 'symlink', linkname: (node.linkTarget ?? Buffer.alloc(0)).toString('utf8') });
        break;
      case NodeType.Fifo:
        pack.entry({ ...h, type: 'fifo' });
        break;
      case NodeType.File: {
        const key = `${node.device}:${node.inode}`;
        const first = node.links > 1 ? links.get(key) : undefined;
        if (first) {
          pack.entry({ ...h, type: 'link', linkname: first });
          break;
        }
        if (node.links > 1) links.set(key, name);
        let entry!: ReturnType<tar.Pack['entry']>;
        const finished = new Promise<void>((resolve, reject) => {
          entry = pack.entry({ ...h, type: 'file', size: node.size }, (err) => (err ? reject(err) : resolve()));
        });
        for await (const chunk of fileContents(repo, node)) {
          if (!entry.write(chunk)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
        }
        entry.end(null);
        await finished;
        break;
      }
      default:
        // Devices and sockets cannot be recreated from a tar by an unprivileged user; they are left out.
        break;
    }
  }
  pack.finalize();
  await done;
}
