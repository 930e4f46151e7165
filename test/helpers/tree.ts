// Source trees that hold everything a file system can, and an exact comparison of two trees:
// contents byte for byte, and type, mode, owner, times, link targets, hard links and holes.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const isRoot = process.getuid?.() === 0;

/** Bytes from a seeded generator (AES-CTR), so test data is the same on every run. */
export function seededBytes(seed: string, length: number): Buffer {
  const key = crypto.createHash('sha256').update(seed).digest();
  const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(length));
}

/** Writes `files` (relative path → contents) under `root`, making the folders; returns `root`. */
export function writeTree(root: string, files: Record<string, string | Buffer>): string {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), content);
  }
  return root;
}

function setTimes(p: string | Buffer, seconds: number): void {
  fs.lutimesSync(p, seconds, seconds);
}

/** A tree with every kind of entry the backup must bring back. Returns its path. */
export function makeRichTree(root: string): string {
  const j = (...parts: string[]): string => path.join(root, ...parts);
  fs.mkdirSync(j('docs/deep/er/still'), { recursive: true });
  fs.mkdirSync(j('empty-dir'));
  fs.writeFileSync(j('docs/readme.txt'), 'hello coffer\n'.repeat(100));
  fs.writeFileSync(j('docs/empty'), '');
  fs.writeFileSync(j('docs/deep/er/still/bottom.txt'), 'bottom');
  for (let i = 0; i < 40; i++) fs.writeFileSync(j('docs', `small-${i}.txt`), `file ${i}\n`.repeat(i + 1));
  // Multi-chunk: random data with a repeated stretch (dedup inside one file) and compressible text.
  const random = seededBytes('big', 6 * 1024 * 1024);
  fs.writeFileSync(j('big.bin'), Buffer.concat([random, random.subarray(0, 3 * 1024 * 1024), Buffer.from('text '.repeat(400_000))]));
  // Sparse: 40 MiB with data only at 8 MiB and at the very end.
  const sparse = fs.openSync(j('sparse.img'), 'w');
  fs.writeSync(sparse, seededBytes('sparse', 300_000), 0, 300_000, 8 * 1024 * 1024);
  fs.writeSync(sparse, Buffer.from('end'), 0, 3, 40 * 1024 * 1024 - 3);
  fs.closeSync(sparse);
  fs.symlinkSync('docs/readme.txt', j('link-to-readme'));
  fs.symlinkSync('/nonexistent/target', j('dangling'));
  fs.symlinkSync('loop-b', j('loop-a'));
  fs.symlinkSync('loop-a', j('loop-b'));
  fs.writeFileSync(j('hard-1'), 'two names, one inode');
  fs.linkSync(j('hard-1'), j('docs/hard-2'));
  execFileSync('mkfifo', [j('fifo')]);
  fs.writeFileSync(j('setuid'), '#!/bin/sh\n');
  fs.chmodSync(j('setuid'), 0o4755);
  fs.writeFileSync(j('private'), 'secret');
  fs.chmodSync(j('private'), 0o600);
  fs.chmodSync(j('empty-dir'), 0o750);
  if (isRoot) {
    fs.chownSync(j('private'), 1234, 5678);
    fs.lchownSync(j('link-to-readme'), 4321, 8765);
  }
  // A name that is not valid UTF-8, and one of the maximal 255 bytes.
  const latin1 = Buffer.concat([Buffer.from(root), Buffer.from('/caf'), Buffer.from([0xe9, 0xff]), Buffer.from('.txt')]);
  fs.writeFileSync(latin1, 'latin-1 name');
  fs.writeFileSync(j('n'.repeat(255)), 'long name');
  // A long path: nested 200-byte directory names, about 2.5 KB in all.
  let long = j('long');
  for (let i = 0; i < 12; i++) long = path.join(long, `${i}`.padEnd(200, 'x'));
  fs.mkdirSync(long, { recursive: true });
  fs.writeFileSync(path.join(long, 'leaf'), 'far down');
  // Times with nanoseconds, one before 1970.
  setTimes(j('docs/readme.txt'), 981173106.123456);
  setTimes(j('docs/empty'), -86400.5);
  setTimes(j('link-to-readme'), 1_500_000_000.25);
  setTimes(j('docs/deep'), 1_234_567_890);
  return root;
}

interface Entry {
  readonly rel: string;
  readonly stat: fs.BigIntStats;
  readonly abs: Buffer;
}

function walk(root: Buffer, rel = Buffer.alloc(0), out: Entry[] = []): Entry[] {
  for (const name of fs.readdirSync(Buffer.concat([root, rel]), { encoding: 'buffer' })) {
    const relPath = Buffer.concat([rel, Buffer.from('/'), name]);
    const abs = Buffer.concat([root, relPath]);
    const stat = fs.lstatSync(abs, { bigint: true });
    out.push({ rel: relPath.toString('latin1'), stat, abs });
    if (stat.isDirectory()) walk(root, relPath, out);
  }
  return out;
}

function kind(st: fs.BigIntStats): string {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : 'other';
}

function sameFileContent(a: Buffer, b: Buffer): boolean {
  const hash = (p: Buffer): string => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  return hash(a) === hash(b);
}

/** Every difference between two trees (empty when they are the same); `checkOwners` needs root. */
export function treeDifferences(expected: string, actual: string, { checkOwners = isRoot } = {}): string[] {
  const a = walk(Buffer.from(expected));
  const b = new Map(walk(Buffer.from(actual)).map((e) => [e.rel, e]));
  const problems: string[] = [];
  const inodesA = new Map<bigint, string>();
  const inodesB = new Map<bigint, string>();
  for (const ea of a) {
    const eb = b.get(ea.rel);
    b.delete(ea.rel);
    if (!eb) {
      problems.push(`${ea.rel}: missing`);
      continue;
    }
    const [sa, sb] = [ea.stat, eb.stat];
    if (kind(sa) !== kind(sb)) {
      problems.push(`${ea.rel}: ${kind(sa)} became ${kind(sb)}`);
      continue;
    }
    if (!sa.isSymbolicLink() && (sa.mode & 0o7777n) !== (sb.mode & 0o7777n)) problems.push(`${ea.rel}: mode ${sa.mode.toString(8)} != ${sb.mode.toString(8)}`);
    if (checkOwners && (sa.uid !== sb.uid || sa.gid !== sb.gid)) problems.push(`${ea.rel}: owner ${sa.uid}:${sa.gid} != ${sb.uid}:${sb.gid}`);
    // Node sets times through a double, so the last few hundred nanoseconds may differ.
    const drift = sa.mtimeNs - sb.mtimeNs;
    if (drift > 1000n || drift < -1000n) problems.push(`${ea.rel}: mtime ${sa.mtimeNs} != ${sb.mtimeNs}`);
    if (sa.isFile()) {
      if (sa.size !== sb.size) problems.push(`${ea.rel}: size ${sa.size} != ${sb.size}`);
      else if (!sameFileContent(ea.abs, eb.abs)) problems.push(`${ea.rel}: content differs`);
      if (sa.blocks * 512n < sa.size / 2n && sb.blocks * 512n >= sb.size) problems.push(`${ea.rel}: holes were not restored as holes`);
      if (sa.nlink > 1n) {
        const firstA = inodesA.get(sa.ino);
        const firstB = inodesB.get(sb.ino);
        if (firstA !== firstB) problems.push(`${ea.rel}: hard link to ${firstA} not restored (linked to ${firstB})`);
        if (!firstA) inodesA.set(sa.ino, ea.rel);
        if (!firstB) inodesB.set(sb.ino, ea.rel);
      }
    }
    if (sa.isSymbolicLink() && !fs.readlinkSync(ea.abs, { encoding: 'buffer' }).equals(fs.readlinkSync(eb.abs, { encoding: 'buffer' }))) {
      problems.push(`${ea.rel}: symlink target differs`);
    }
  }
  for (const extra of b.keys()) problems.push(`${extra}: unexpected`);
  return problems;
}
