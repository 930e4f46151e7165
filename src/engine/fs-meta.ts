// File-system metadata as stored in tree nodes.
import fs from 'node:fs';
import { NodeType, type NodeMeta } from '../format/tree.ts';

export function nodeTypeOf(st: fs.BigIntStats): NodeType | undefined {
  if (st.isFile()) return NodeType.File;
  if (st.isDirectory()) return NodeType.Dir;
  if (st.isSymbolicLink()) return NodeType.Symlink;
  if (st.isFIFO()) return NodeType.Fifo;
  if (st.isCharacterDevice()) return NodeType.CharDevice;
  if (st.isBlockDevice()) return NodeType.BlockDevice;
  if (st.isSocket()) return NodeType.Socket;
  return undefined;
}

export function metaOf(st: fs.BigIntStats, type: NodeType): NodeMeta {
  return {
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    device: st.dev,
    links: Number(st.nlink),
    size: type === NodeType.File ? Number(st.size) : 0,
  };
}

/** Fewer allocated blocks than bytes: the file has holes worth keeping as holes on restore. */
export function looksSparse(st: fs.BigIntStats): boolean {
  return st.blocks * 512n < st.size;
}

/** Joins a directory path and an entry name, both raw bytes. */
export function joinPath(dir: Buffer, name: Buffer): Buffer {
  const slash = dir.length > 0 && dir[dir.length - 1] === 0x2f;
  return Buffer.concat(slash ? [dir, name] : [dir, Buffer.from('/'), name]);
}

/** Seconds as a double (what fs.utimes takes): exact to about a quarter of a microsecond today. */
export function nsToSeconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

export function nsToDate(ns: bigint): Date {
  return new Date(nsToSeconds(ns) * 1000);
}
