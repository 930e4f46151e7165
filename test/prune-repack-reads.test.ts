// Prune's repack reads only the ranges of a pack that hold the blobs it keeps (each blob is checked on
// its own), never the whole pack: a mostly unused pack costs what it keeps, in reads and in memory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { forgetSnapshots } from '../src/engine/forget.ts';
import { PackBuilder, repackPack } from '../src/engine/prune/repack.ts';
import type { SealedPack } from '../src/format/pack.ts';
import { initRepository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import type { ByteRange } from '../src/store/store.ts';
import { tempDir } from './helpers/cli.ts';
import { allContent, backup, checkErrors, PASS, prune, withRepo } from './helpers/lifecycle.ts';
import { seededBytes } from './helpers/tree.ts';

/** A local store that records every read of a data pack. */
class RecordingStore extends LocalStore {
  readonly packReads: { name: string; range?: ByteRange }[] = [];

  override async get(name: string, range?: ByteRange): Promise<Buffer> {
    if (name.startsWith('data/')) this.packReads.push({ name, range });
    return super.get(name, range);
  }
}

test('a mostly unused pack is repacked from the ranges of its kept blobs, not read whole', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'repo');
  const store = new RecordingStore(root);
  await initRepository([store], PASS);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  // One pack: a small file that stays and two large ones that go.
  fs.writeFileSync(path.join(src, 'kept'), seededBytes('kept', 20_000));
  fs.writeFileSync(path.join(src, 'gone1'), seededBytes('gone1', 900_000));
  fs.writeFileSync(path.join(src, 'gone2'), seededBytes('gone2', 900_000));
  const first = await backup([store], [src], { packSize: 8 << 20 });
  // The data pack is the largest (the tree pack is small).
  const [packFile, packSize] = fs
    .readdirSync(path.join(root, 'data'))
    .flatMap((d) => fs.readdirSync(path.join(root, 'data', d)).map((f) => [f, fs.statSync(path.join(root, 'data', d, f)).size] as const))
    .sort((a, b) => b[1] - a[1])[0]!;
  fs.rmSync(path.join(src, 'gone1'));
  fs.rmSync(path.join(src, 'gone2'));
  const second = await backup([store], [src], { packSize: 8 << 20 });
  const before = await allContent([store]);
  await withRepo([store], (repo) => forgetSnapshots(repo, { ids: [first], groupBy: [] }));

  store.packReads.length = 0;
  const result = await prune([store], { maxUnused: { kind: 'percent', percent: 0 } });
  assert.equal(result.repacked.packs, 1, JSON.stringify(result.repacked));
  const reads = store.packReads.filter((r) => r.name.endsWith(packFile));
  assert.ok(reads.length > 0, 'the pack was read');
  assert.deepEqual(reads.filter((r) => r.range === undefined), [], 'never read whole');
  const bytesRead = reads.reduce((sum, r) => sum + r.range!.length, 0);
  assert.ok(bytesRead < packSize / 10, `read ${bytesRead} of a ${packSize}-byte pack to keep a 20 kB file`);

  assert.deepEqual(await checkErrors([store]), []);
  const after = await allContent([store]);
  assert.deepEqual([...after.keys()], [second]);
  assert.deepEqual(after.get(second), before.get(second), 'the kept file reads back identical');
});

test("a repacked pack's entries hold their ids in buffers of their own, not in slices of Node's buffer pool", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 'repo'));
  await initRepository([store], PASS);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  // Many small files: many blobs, each decompressed into a slice of the pool while it is checked.
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(src, `f${i}`), seededBytes(`f${i}`, 3_000));
  await backup([store], [src]);
  const entries = await withRepo([store], async (repo) => {
    await repo.loadIndex();
    const index = repo.index;
    const sealed: SealedPack[] = [];
    const builder = new PackBuilder(repo, 16 << 20, async (pack) => void sealed.push(pack));
    for (let p = 0; p < index.packCount; p++) {
      const blobs = [...Array(index.blobCount).keys()].filter((n) => index.packOfBlob(n) === p);
      await repackPack(repo, p, blobs, builder);
    }
    await builder.finish();
    return sealed.flatMap((pack) => pack.entries);
  });
  assert.ok(entries.length > 300, `${entries.length} blobs`);
  // A 32-byte id in a pool slab keeps the whole slab (and the blobs decompressed into it) alive until
  // the new pack is sealed and uploaded; the ids' own buffers hold nothing else.
  const memory = new Set(entries.map((e) => e.id.buffer));
  const bytes = [...memory].reduce((sum, m) => sum + m.byteLength, 0);
  assert.ok(bytes <= entries.length * 32, `${entries.length} ids keep ${bytes} bytes in ${memory.size} buffers`);
});
