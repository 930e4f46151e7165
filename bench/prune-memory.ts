// Prune of a repository with 10 million blobs after half of its snapshots are forgotten: peak RSS
// (target: under 1 GB) and wall time. The repository is generated directly, without a backup: packs of
// 10,000 tiny blobs (16 unique bytes each, named and encrypted as a backup would), index files of
// 100,000 blobs, and 20 snapshots. Snapshot k holds region k of the blobs (1/20 of them) in files of
// 1,000 chunks, 100 files per directory, and also 1% of region k+1; forgetting the even snapshots leaves
// odd regions whole and even regions 1% used, so prune has both whole packs to keep and mostly unused
// packs to repack. The prune runs as the compiled CLI under /usr/bin/time -v, like every bench command.
//   node bench/prune-memory.ts [--blobs 10000000] [--dir DIR] [--keep] [--json]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compress } from '../src/format/compression.ts';
import { blobId } from '../src/format/crypto.ts';
import type { IndexedPack } from '../src/format/index-file.ts';
import { BlobType, PackWriter } from '../src/format/pack.ts';
import { encodeTree, NodeType, type TreeNode } from '../src/format/tree.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { packName } from '../src/store/store.ts';
import { measure, run } from './measure.ts';
import { cofferCommand } from './tools.ts';

export interface PruneMemoryResult {
  readonly blobs: number;
  readonly packs: number;
  readonly snapshots: number;
  readonly generateSeconds: number;
  readonly repoBytes: number;
  readonly pruneSeconds: number;
  readonly pruneMaxRssBytes: number;
  readonly pruneCpuSeconds: number;
  /** Prune's own summary (what it deleted and repacked). */
  readonly summary: Record<string, unknown>;
}

const PASSPHRASE = 'coffer-bench';
const BLOBS_PER_PACK = 10_000;
const BLOBS_PER_INDEX = 100_000;
const CHUNKS_PER_FILE = 1_000;
const FILES_PER_DIR = 100;
const SNAPSHOTS = 20;

function fileNode(name: string, content: Buffer, size: number): TreeNode {
  return { name: Buffer.from(name), type: NodeType.File, mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 1n, device: 1n, links: 1, size, content, sparse: false };
}

function dirNode(name: string, subtree: Buffer): TreeNode {
  return { name: Buffer.from(name), type: NodeType.Dir, mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 2n, device: 1n, links: 1, size: 0, subtree };
}

/** Writes the synthetic repository; returns its pack count. */
export async function generate(root: string, blobs: number): Promise<number> {
  const store = new LocalStore(root);
  await initRepository([store], PASSPHRASE);
  const repo = await Repository.open([store], PASSPHRASE);
  const region = Math.ceil(blobs / SNAPSHOTS);
  let indexBatch: IndexedPack[] = [];
  let indexBlobs = 0;
  let packs = 0;
  const flushIndex = async (): Promise<void> => {
    if (indexBatch.length === 0) return;
    const sealed = repo.sealIndex(indexBatch);
    await store.put(sealed.name, sealed.bytes);
    indexBatch = [];
    indexBlobs = 0;
  };
  const addPack = async (writer: PackWriter): Promise<void> => {
    const sealed = writer.seal();
    await store.put(packName(sealed.id), sealed.bytes);
    indexBatch.push({ id: Buffer.from(sealed.id, 'hex'), salt: sealed.salt, entries: sealed.entries });
    indexBlobs += sealed.entries.length;
    packs++;
    if (indexBlobs >= BLOBS_PER_INDEX) await flushIndex();
  };
  let treeWriter = new PackWriter(repo.keys.dataKey, { capacity: 16 << 20 });
  const storeTree = async (nodes: TreeNode[]): Promise<Buffer> => {
    const bytes = encodeTree(nodes);
    const id = blobId(repo.idKey, bytes);
    treeWriter.add(BlobType.Tree, id, compress(bytes), bytes.length);
    if (treeWriter.size >= 16 << 20) {
      await addPack(treeWriter);
      treeWriter = new PackWriter(repo.keys.dataKey, { capacity: 16 << 20 });
    }
    return id;
  };
  /** A snapshot's root tree over its chunk ids: files of 1,000 chunks, 100 files per directory. */
  const storeSnapshotTree = async (ids: Buffer): Promise<Buffer> => {
    const dirs: TreeNode[] = [];
    let files: TreeNode[] = [];
    const chunks = ids.length / 32;
    for (let f = 0; f * CHUNKS_PER_FILE < chunks; f++) {
      const content = ids.subarray(f * CHUNKS_PER_FILE * 32, Math.min(chunks, (f + 1) * CHUNKS_PER_FILE) * 32);
      files.push(fileNode(`file${String(f).padStart(6, '0')}`, Buffer.from(content), (content.length / 32) * 16));
      if (files.length === FILES_PER_DIR) {
        dirs.push(dirNode(`dir${String(dirs.length).padStart(4, '0')}`, await storeTree(files)));
        files = [];
      }
    }
    if (files.length > 0) dirs.push(dirNode(`dir${String(dirs.length).padStart(4, '0')}`, await storeTree(files)));
    return storeTree([dirNode('data', await storeTree(dirs))]);
  };
  const counter = Buffer.alloc(16);
  const seed = crypto.randomBytes(8);
  let previous: { own: Buffer } | undefined;
  const roots: Buffer[] = [];
  for (let k = 0; k < SNAPSHOTS; k++) {
    const first = k * region;
    const count = Math.max(0, Math.min(region, blobs - first));
    const own = Buffer.allocUnsafe(count * 32);
    const borrowed: Buffer[] = [];
    let writer = new PackWriter(repo.keys.dataKey, { capacity: 1 << 20 });
    for (let i = 0; i < count; i++) {
      seed.copy(counter, 0);
      counter.writeUIntBE(first + i, 10, 6);
      const raw = Buffer.from(counter);
      const id = blobId(repo.idKey, raw);
      writer.add(BlobType.Data, id, { flag: 0, body: raw }, raw.length);
      id.copy(own, i * 32);
      if (i % 100 === 0) borrowed.push(id);
      if (writer.count === BLOBS_PER_PACK) {
        await addPack(writer);
        writer = new PackWriter(repo.keys.dataKey, { capacity: 1 << 20 });
      }
    }
    if (writer.count > 0) await addPack(writer);
    // Snapshot k-1 holds its region and 1% of this one.
    if (previous) roots.push(await storeSnapshotTree(Buffer.concat([previous.own, ...borrowed])));
    previous = { own };
    process.stderr.write(`\rgenerated ${Math.min(blobs, first + count).toLocaleString('en-US')} blobs`);
  }
  if (previous) roots.push(await storeSnapshotTree(previous.own));
  if (treeWriter.count > 0) await addPack(treeWriter);
  await flushIndex();
  for (const [k, root] of roots.entries()) {
    const sealed = repo.sealSnapshot({
      version: 1,
      time: new Date(Date.UTC(2026, 0, 1 + k)).toISOString(),
      host: 'bench',
      user: 'bench',
      paths: ['/data'],
      tags: [k % 2 === 0 ? 'even' : 'odd'],
      tree: root.toString('hex'),
      program: 'coffer bench',
      summary: { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, totalFiles: 0, totalBytes: 0, dataBlobs: 0, treeBlobs: 0, bytesAdded: 0, warnings: 0, durationMs: 0 },
    });
    await store.put(sealed.name, sealed.bytes);
  }
  process.stderr.write('\n');
  await repo.close();
  return packs;
}

function treeBytes(root: string): number {
  let total = 0;
  for (const e of fs.readdirSync(root, { recursive: true, withFileTypes: true })) if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size;
  return total;
}

export async function pruneMemory(blobs: number, dir: string): Promise<PruneMemoryResult> {
  const repo = path.join(dir, 'repo');
  fs.rmSync(repo, { recursive: true, force: true });
  const started = performance.now();
  const packs = await generate(repo, blobs);
  const generateSeconds = (performance.now() - started) / 1000;
  const repoBytes = treeBytes(repo);
  const env = { ...process.env, COFFER_PASSWORD: PASSPHRASE };
  // Forgetting half of the snapshots (untimed): the even ones.
  await run(cofferCommand(['forget', '--repo', repo, '--keep-tag', 'odd', '--group-by', '']), env);
  const m = await measure(cofferCommand(['prune', '--repo', repo, '--json']), env);
  const summary = JSON.parse(m.stdout.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
  return { blobs, packs, snapshots: SNAPSHOTS, generateSeconds, repoBytes, pruneSeconds: m.wallSeconds, pruneMaxRssBytes: m.maxRssBytes, pruneCpuSeconds: m.userSeconds + m.sysSeconds, summary };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { blobs: { type: 'string', default: '10000000' }, dir: { type: 'string' }, keep: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
  const dir = values.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-prune-bench-'));
  try {
    const r = await pruneMemory(Number(values.blobs), dir);
    if (values.json) console.log(JSON.stringify(r));
    else
      console.log(
        `${r.blobs.toLocaleString('en-US')} blobs in ${r.packs} packs (${(r.repoBytes / 2 ** 20).toFixed(0)} MiB, generated in ${r.generateSeconds.toFixed(0)} s): ` +
          `prune after forgetting ${r.snapshots / 2} of ${r.snapshots} snapshots took ${r.pruneSeconds.toFixed(1)} s (${r.pruneCpuSeconds.toFixed(1)} CPU-s), peak RSS ${(r.pruneMaxRssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
  } finally {
    if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}
