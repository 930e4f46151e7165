// Chunk worker threads start when a file (or stream) needs reading, and only as many as the work keeps
// busy: a no-change backup starts none, a backup with one changed file one. Threads are counted through
// the worker_threads diagnostics channel (every thread the process starts), as backup-totals.test.ts does.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { BackupRun, type BackupResult } from '../src/engine/backup/backup.ts';
import { ChunkPool, type ScannedFile } from '../src/engine/backup/chunk-pool.ts';
import type { FileResult } from '../src/engine/backup/chunk-protocol.ts';
import { DEFAULT_ZSTD_LEVEL } from '../src/format/compression.ts';
import { blobId, SALT_BYTES, secretKey } from '../src/format/crypto.ts';
import { BlobType } from '../src/format/pack.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

const PASS = 'on demand';
const FILES = 40;

async function setup(t: TestContext): Promise<{ dir: string; source: string; repoDir: string }> {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`f${i}`, 3000 + i));
  const repoDir = path.join(dir, 'repo');
  await initRepository([new LocalStore(repoDir)], PASS);
  return { dir, source, repoDir };
}

/** One backup with a pool of up to two chunk workers; the threads it started. */
async function backup(repoDir: string, source: string): Promise<{ result: BackupResult; threads: number }> {
  let threads = 0;
  const started = () => threads++;
  diagnostics.subscribe('worker_threads', started);
  const repo = await Repository.open([new LocalStore(repoDir)], PASS);
  try {
    const result = await new BackupRun(repo, { paths: [source], workers: 2 }).run();
    return { result, threads };
  } finally {
    diagnostics.unsubscribe('worker_threads', started);
    await repo.close();
  }
}

/** A pool of up to two chunk workers on the repository's keys and index, and the ids of the packs it seals. */
async function poolOf(t: TestContext, repoDir: string): Promise<{ repo: Repository; pool: ChunkPool; packs: string[] }> {
  const repo = await Repository.open([new LocalStore(repoDir)], PASS);
  t.after(() => repo.close());
  await repo.loadIndex();
  const workerSetup = {
    chunkerSeed: repo.keys.chunkerSeed,
    chunker: repo.config.chunker,
    idKey: repo.keys.idKey,
    dataKey: repo.keys.dataKey,
    packSize: 1024 * 1024,
    zstdLevel: DEFAULT_ZSTD_LEVEL,
    spoolDir: os.tmpdir(),
  };
  const packs: string[] = [];
  // Each pack's spool file is the receiver's to close.
  const pool = new ChunkPool(workerSetup, repo.index, { onPack: (p) => {
    packs.push(p.id);
    p.file.close();
  }, onRead: () => {}, onFatal: (err) => assert.fail(err) }, 2);
  t.after(() => pool.close());
  return { repo, pool, packs };
}

function scanned(file: string): ScannedFile {
  const stat = fs.statSync(file, { bigint: true });
  return { size: Number(stat.size), mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs };
}

test('a backup with nothing changed since its parent starts no thread at all', async (t) => {
  const { source, repoDir } = await setup(t);
  await backup(repoDir, source);
  const again = await backup(repoDir, source);
  assert.equal(again.result.snapshot.summary.filesUnmodified, FILES);
  assert.equal(again.threads, 0, 'no chunk worker (nothing to read) and no counter (the parent has the totals)');
});

test('a backup with one changed file starts one chunk worker and stores the file', async (t) => {
  const { dir, source, repoDir } = await setup(t);
  await backup(repoDir, source);
  fs.writeFileSync(path.join(source, 'f7'), seededBytes('f7 changed', 5000));

  const changed = await backup(repoDir, source);
  assert.equal(changed.result.snapshot.summary.filesChanged, 1);
  assert.equal(changed.threads, 1, 'one chunk worker for one file, though the pool may start two');
  ok(['check', '--read-data', '--repo', repoDir], { env: { COFFER_PASSWORD: PASS } });
  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repoDir, 'latest', '--target', target], { env: { COFFER_PASSWORD: PASS } });
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});

test('a worker started after the index grew skips the blobs the index gained meanwhile', async (t) => {
  const { source, repoDir } = await setup(t);
  const { repo, pool, packs } = await poolOf(t, repoDir);

  // The empty index has no page of ids yet: its first blob gives it one, a share the pool's workers
  // have never seen. A file smaller than the minimal chunk is that one blob.
  const file = path.join(source, 'f3');
  const content = fs.readFileSync(file);
  assert.ok(content.length < repo.config.chunker.min);
  const id = blobId(secretKey(repo.keys.idKey), content);
  repo.index.addPack({ id: crypto.randomBytes(32), salt: crypto.randomBytes(SALT_BYTES), entries: [{ type: BlobType.Data, id, offset: 0, length: content.length + 40, rawLength: content.length }] });

  const result = await new Promise<FileResult>((resolve) => pool.submit(Buffer.from(file), scanned(file), 0, resolve));
  await pool.flush();
  assert.ok(result.ok);
  assert.deepEqual(result.content, id);
  assert.deepEqual(packs, [], 'the blob is in the index: no pack stores it again');
});

test('a closed pool starts no worker for a file submitted after it closed (the walk of a stopped run)', async (t) => {
  const { source, repoDir } = await setup(t);
  const { pool } = await poolOf(t, repoDir);
  let threads = 0;
  const started = () => threads++;
  diagnostics.subscribe('worker_threads', started);
  t.after(() => diagnostics.unsubscribe('worker_threads', started));
  await pool.close();
  const file = path.join(source, 'f1');
  pool.submit(Buffer.from(file), scanned(file), 0, () => assert.fail('a closed pool reads nothing'));
  assert.equal(threads, 0, 'a thread started now would keep the process alive after the run');
});
