// A chunk worker writes each data pack straight into a file of the spool directory as it fills
// (src/engine/backup/pack-file.ts), so no thread holds a data pack in memory. What is checked: the
// file is exactly the pack its id and entries say, whatever the sizes of the writes that made it; it
// never has a name in the spool directory; a backup through such files checks and restores whole and
// leaves no file open or named.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { PackFileWriter } from '../src/engine/backup/pack-file.ts';
import { SpoolFile } from '../src/engine/spool.ts';
import { compress, decompressPayload } from '../src/format/compression.ts';
import { blobId, contentId, secretKey } from '../src/format/crypto.ts';
import { BlobType, openBlob, openHeader, packKey, parseTrailer, TRAILER_BYTES } from '../src/format/pack.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import type { ObjectSource, PutOptions } from '../src/store/store.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { openFilesUnder } from './helpers/open-files.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

const PASS = 'pack files';

/** Counts how packs of file data (not of trees: those are built in memory) reach a local store: copied from a source, or put whole. */
class CountingStore extends LocalStore {
  dataPacksCopied = 0;
  dataPacksPut = 0;
  override async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    if (name.startsWith('data/') && !options?.metadata) this.dataPacksPut++;
    return super.put(name, data, options);
  }
  override async putFrom(name: string, source: ObjectSource, options?: PutOptions): Promise<boolean> {
    if (name.startsWith('data/')) this.dataPacksCopied++;
    return super.putFrom(name, source, options);
  }
}

test('a pack written to a spool file is the pack its id and entries say, through small and big writes alike', async (t) => {
  const dir = tempDir(t);
  const dataKey = seededBytes('data key', 32);
  const idKey = secretKey(seededBytes('id key', 32));
  // A 4 KiB staging buffer: the tiny pieces of a blob are gathered, the 70 KB one goes out on its own.
  const blobs = [seededBytes('a', 5000), Buffer.alloc(70_000, 'b'), seededBytes('c', 123), seededBytes('d', 4096)];
  const writer = new PackFileWriter(dataKey, SpoolFile.create(dir), dir, Buffer.alloc(4096));
  for (const raw of blobs) writer.add(BlobType.Data, blobId(idKey, raw), compress(raw), raw.length);
  assert.deepEqual(fs.readdirSync(dir), [], 'the file has no name in the spool directory');
  assert.deepEqual(openFilesUnder(dir).map((f) => f.endsWith('.pack (deleted)')), [true]);
  const sealed = writer.seal();
  t.after(() => sealed.file.close());
  const bytes = await sealed.file.read(new Uint8Array(sealed.file.size));
  assert.equal(contentId(bytes), sealed.id);
  const trailer = parseTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), 'pack');
  assert.ok(trailer.salt.equals(sealed.salt));
  const key = packKey(dataKey, trailer.salt);
  const headerOffset = bytes.length - TRAILER_BYTES - trailer.headerLength;
  const entries = openHeader(key, bytes.subarray(headerOffset, bytes.length - TRAILER_BYTES), headerOffset, 'pack');
  assert.deepEqual(entries, sealed.entries);
  entries.forEach((e, i) => {
    const framed = openBlob(key, e.offset, e.type, e.id, bytes.subarray(e.offset, e.offset + e.length), 'blob');
    assert.ok(decompressPayload(framed, e.rawLength, 'blob').equals(blobs[i]!), `blob ${i}`);
  });
});

test('a backup of many packs through spool files checks and restores whole, and leaves no spool file open or named', async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(source, `random-${i}`), crypto.randomBytes(1536 * 1024 + i));
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(source, `text-${i}`), Buffer.from(`line ${i}\n`.repeat(100_000)));
  const spoolDir = path.join(dir, 'spool');
  fs.mkdirSync(spoolDir);
  const repoDir = path.join(dir, 'repo');
  await initRepository([new LocalStore(repoDir)], PASS);
  const store = new CountingStore(repoDir);
  const repo = await Repository.open([store], PASS);
  await repo.loadIndex();
  const result = await new BackupRun(repo, { paths: [source], packSize: 256 * 1024, workers: 2, spoolDir }).run();
  await repo.close();
  assert.ok(result.snapshot.summary.bytesAdded > 9 * 1024 * 1024, 'dozens of packs');
  assert.ok(store.dataPacksCopied >= 6, `${store.dataPacksCopied} data packs copied from their spool files`);
  assert.equal(store.dataPacksPut, 0, 'no data pack was read into memory whole');
  assert.deepEqual(openFilesUnder(spoolDir), []);
  assert.deepEqual(fs.readdirSync(spoolDir), []);
  ok(['check', '--read-data', '--repo', repoDir], { env: { COFFER_PASSWORD: PASS } });
  const target = path.join(dir, 'target');
  ok(['restore', '--repo', repoDir, 'latest', '--target', target], { env: { COFFER_PASSWORD: PASS } });
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});
