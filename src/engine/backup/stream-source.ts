// Streamed sources: a file whose bytes come from a stream — stdin, a database dump, any command's
// output — rather than from disk. The engine chunks it as it arrives (no temporary copy, memory bounded
// by the chunk pool's window) and stores it as a regular file at the top of the snapshot, named
// NAME, with the snapshot path /NAME. The stream must end normally: if `open()`'s iterator throws (the
// producer failed or exited non-zero), the backup fails and commits no snapshot.
import path from 'node:path';
import { NodeType, type TreeNode } from '../../format/tree.ts';

export interface StreamSource {
  /** One path component: the file's name at the top of the snapshot. */
  readonly name: string;
  /**
   * The bytes, in order. Throws if the producer failed. `return()` and `stop` (the run stopped) must
   * stop the producer, the signal even while no bytes come, and `return()` settles once it has gone.
   */
  open(stop: AbortSignal): AsyncIterable<Uint8Array>;
}

export function streamSnapshotPath(name: string): string {
  return `/${name}`;
}

/**
 * A snapshot's `paths`: its source paths resolved, each once, and each stream's /NAME, sorted. A plan's
 * own snapshots are exactly those with these paths (and its host): `forget --plan` finds them so.
 */
export function snapshotPathsOf(paths: readonly string[], streamNames: readonly string[]): string[] {
  return [...new Set(paths.map((p) => path.resolve(p))), ...streamNames.map(streamSnapshotPath)].sort();
}

/** The tree node of a stream: a private regular file (a dump may hold secrets) owned by this process's user, dated now. */
export function streamNode(name: string, content: Buffer, size: number): TreeNode {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    type: NodeType.File,
    name: Buffer.from(name),
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtimeNs: now,
    ctimeNs: now,
    inode: 0n,
    device: 0n,
    links: 1,
    size,
    content,
    sparse: false,
  };
}
