// FIFOs and device nodes. Node cannot make them, so mkfifo and mknod do: under a temporary ASCII name,
// in a directory they get as an open descriptor (never a path that a link or a non-UTF-8 name could
// send elsewhere). The caller sets the metadata and renames the result into place.
import { spawnSync } from 'node:child_process';
import { NodeType, type TreeNode } from '../../format/tree.ts';
import type { TargetDir } from './target-dir.ts';

export function makeSpecial(dir: TargetDir, tmpName: string, node: TreeNode): void {
  const path = dir.toolPath(tmpName);
  const mode = (node.mode & 0o7777).toString(8);
  if (node.type === NodeType.Fifo) {
    runTool(dir, 'mkfifo', ['-m', mode, path]);
    return;
  }
  const rdev = node.rdev ?? 0n;
  const major = Number((rdev >> 8n) & 0xfffn);
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
  runTool(dir, 'mknod', ['-m', mode, path, node.type === NodeType.CharDevice ? 'c' : 'b', String(major), String(minor)]);
}

function runTool(dir: TargetDir, tool: string, args: string[]): void {
  const result = spawnSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe', dir.fd] });
  if (result.status !== 0) throw new Error(`${tool} failed: ${(result.stderr || result.error?.message || `exit ${result.status}`).trim()}`);
}
