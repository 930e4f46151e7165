// `restore --verify`: a restored file is read back and cut where the snapshot's chunks end (their raw
// lengths come from the index); each piece must hash to the chunk's id, and nothing may follow.
import fs from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { blobId } from '../../format/crypto.ts';
import { contentIds, type TreeNode } from '../../format/tree.ts';
import type { BlobIndex } from '../../repo/blob-index.ts';

/** Undefined when the file on disk holds exactly the snapshot's content; otherwise what is wrong. */
export function verifyRestoredFile(abs: Buffer, node: TreeNode, index: BlobIndex, idKey: KeyObject): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    return `cannot be read back: ${(err as Error).message}`;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size !== node.size) return `is ${size} bytes on disk, the snapshot says ${node.size}`;
    let position = 0;
    for (const [i, id] of contentIds(node).entries()) {
      const length = index.lookup(id)?.rawLength;
      if (length === undefined) return `chunk ${i} is not in the index; run coffer check`;
      const piece = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, piece, got, length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      if (got !== length || !blobId(idKey, piece).equals(id)) return `differs from the snapshot in bytes ${position}–${position + length - 1}`;
      position += length;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
