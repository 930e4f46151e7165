// A stored pack's memory goes back to a chunk worker of the pool that sealed it, for a next pack: on these
// machines the first write to each page of a new buffer faults, and that cost as much as copying the
// pack (bench/PROFILE.md, "Pack memory reused"). What is checked: a pack written into old memory is the
// same bytes as one written into new memory; the pool gives memory back at most one pack ahead of each
// worker, only the pool's own packs and only during their run; a backup through reused memory restores whole.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { ChunkPool } from '../src/engine/backup/chunk-pool.ts';
import type { PackMessage } from '../src/engine/backup/chunk-protocol.ts';
import { compress, DEFAULT_ZSTD_LEVEL } from '../src/format/compression.ts';
import { blobId, secretKey } from '../src/format/crypto.ts';
import { BlobType, PackWriter, packCapacity } from '../src/format/pack.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

const PASS = 'pack memory';

test('a pack written into an earlier pack\'s memory is byte for byte the one written into new memory, and owns that memory', () => {
  const dataKey = seededBytes('data key', 32);
  const idKey = secretKey(seededBytes('id key', 32));
  const blobs = [seededBytes('a', 5000), Buffer.alloc(70_000, 'b'), seededBytes('c', 123)];
  const write = (memory?: ArrayBuffer) => {
    const writer = new PackWriter(dataKey, { capacity: 64 * 1024, salt: Buffer.alloc(32, 9), ...(memory ? { memory } : {}) });
    for (const raw of blobs) writer.add(BlobType.Data, blobId(idKey, raw), compress(raw), raw.length);
    return writer.seal();
  };
  const fresh = write();
  // An earlier, bigger pack's bytes fill the memory: none of them may show through.
  const old = new ArrayBuffer(256 * 1024, { maxByteLength: 1024 * 1024 });
  new Uint8Array(old).fill(0xaa);
  const reused = write(old);
  assert.equal(reused.id, fresh.id);
  assert.ok(reused.bytes.equals(fresh.bytes));
  assert.equal(reused.bytes.buffer, old, 'written in place');
  assert.equal(old.byteLength, 256 * 1024, 'not cut to the pack: a next pack would fault the pages in again');
  // Memory that cannot hold the pack is not used.
  const small = new ArrayBuffer(1024, { maxByteLength: 2048 });
  assert.notEqual(write(small).bytes.buffer, small);
});

test('a pack in a buffer of packCapacity never grows it, even through the blob that crosses the pack size', () => {
  const dataKey = seededBytes('data key', 32);
  const idKey = secretKey(seededBytes('id key', 32));
  const capacity = packCapacity(256 * 1024, 128 * 1024);
  let memory: ArrayBuffer | undefined;
  for (let pack = 0; pack < 3; pack++) {
    const writer = new PackWriter(dataKey, { capacity, ...(memory ? { memory } : {}) });
    for (let i = 0; writer.size < 256 * 1024; i++) {
      const raw = seededBytes(`pack ${pack} blob ${i}`, 128 * 1024 - i);
      writer.add(BlobType.Data, blobId(idKey, raw), compress(raw), raw.length);
    }
    const sealed = writer.seal();
    memory = sealed.bytes.buffer as ArrayBuffer;
    assert.equal(memory.byteLength, capacity, `pack ${pack}: ${sealed.bytes.length} bytes`);
  }
});

test('the pool gives a pack\'s memory back to a worker, one pack ahead of each at most, and only during its run', async (t) => {
  const dir = tempDir(t);
  const repoDir = path.join(dir, 'repo');
  await initRepository([new LocalStore(repoDir)], PASS);
  const repo = await Repository.open([new LocalStore(repoDir)], PASS);
  t.after(() => repo.close());
  await repo.loadIndex();
  const packs: PackMessage[] = [];
  const events = { onPack: (p: PackMessage) => packs.push(p), onRead: () => {}, onFatal: (err: Error) => assert.fail(err) };
  const setup = { chunkerSeed: repo.keys.chunkerSeed, chunker: repo.config.chunker, idKey: repo.keys.idKey, dataKey: repo.keys.dataKey, packSize: 256 * 1024, zstdLevel: DEFAULT_ZSTD_LEVEL };
  const pool = new ChunkPool(setup, repo.index, events, 1);
  t.after(() => pool.close());
  const readFile = async (name: string, size: number): Promise<void> => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, crypto.randomBytes(size));
    const stat = fs.statSync(file, { bigint: true });
    await new Promise<void>((resolve) => pool.submit(Buffer.from(file), { size, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs }, 0, () => resolve()));
    await pool.flush();
  };

  await readFile('first', 4 * 1024 * 1024);
  const first = packs.splice(0);
  assert.ok(first.length >= 2);
  // V8 zero-fills what a resizable buffer grows by: a pack's buffer that grew at its crossing blob (and
  // was cut when sealed) had those pages zeroed and faulted in again for every pack.
  const capacity = packCapacity(setup.packSize, setup.chunker.max);
  for (const p of first) assert.ok(p.bytes.byteLength === capacity && p.length <= capacity, `a pack of ${p.length} bytes in a buffer of ${p.bytes.byteLength}, not ${capacity}`);
  assert.equal(pool.takeBack(new Uint8Array(first[0]!.bytes, 1)), false, 'not a view into part of a pack');
  assert.equal(pool.takeBack(new Uint8Array(first[0]!.bytes)), true);
  assert.equal(first[0]!.bytes.byteLength, 0, 'moved to the worker');
  assert.equal(pool.takeBack(new Uint8Array(first[1]!.bytes)), false, 'one is waiting already');
  assert.equal(pool.takeBack(new Uint8Array(new ArrayBuffer(1024, { maxByteLength: 4096 }))), false, 'not a pack of this pool');

  await readFile('second', 300 * 1024);
  assert.equal(packs[0]!.memoryTaken, 1, 'the next pack took it');
  assert.equal(pool.takeBack(new Uint8Array(packs[0]!.bytes)), true, 'so there is room for another');

  packs.length = 0;
  await readFile('third', 300 * 1024);
  assert.equal(packs[0]!.memoryTaken, 2, 'taken too: nothing waits');
  pool.endRun();
  assert.equal(pool.takeBack(new Uint8Array(packs[0]!.bytes)), false, 'a pack of a run that is over');
});

test('a backup of many packs through reused memory checks and restores whole', async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(source, `random-${i}`), crypto.randomBytes(1536 * 1024 + i));
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(source, `text-${i}`), Buffer.from(`line ${i}\n`.repeat(100_000)));
  const repoDir = path.join(dir, 'repo');
  await initRepository([new LocalStore(repoDir)], PASS);
  const repo = await Repository.open([new LocalStore(repoDir)], PASS);
  await repo.loadIndex();
  const result = await new BackupRun(repo, { paths: [source], packSize: 256 * 1024, workers: 2 }).run();
  await repo.close();
  assert.ok(result.snapshot.summary.bytesAdded > 9 * 1024 * 1024, "dozens of packs");
  ok(['check', '--read-data', '--repo', repoDir], { env: { COFFER_PASSWORD: PASS } });
  const target = path.join(dir, 'target');
  ok(['restore', '--repo', repoDir, 'latest', '--target', target], { env: { COFFER_PASSWORD: PASS } });
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});
