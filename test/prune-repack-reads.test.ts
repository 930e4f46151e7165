// Prune's repack reads only the ranges of a pack that hold the blobs it keeps (each blob is checked on
// its own), never the whole pack: a mostly unused pack costs what it keeps, in reads and in memory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
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

/**
 * One data pack of which a 20 kB file stays and two 900 kB files go: backed up, the files removed,
 * backed up again, and the first snapshot forgotten. The kept file's blob comes first in the pack.
 */
async function mostlyUnusedPack(t: TestContext): Promise<{ store: RecordingStore; pack: string; packSize: number; second: string; before: Awaited<ReturnType<typeof allContent>> }> {
  const dir = tempDir(t);
  const root = path.join(dir, 'repo');
  const store = new RecordingStore(root);
  await initRepository([store], PASS);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'kept'), seededBytes('kept', 20_000));
  fs.writeFileSync(path.join(src, 'gone1'), seededBytes('gone1', 900_000));
  fs.writeFileSync(path.join(src, 'gone2'), seededBytes('gone2', 900_000));
  const first = await backup([store], [src], { packSize: 8 << 20 });
  // The data pack is the largest (the tree pack is small).
  const [pack, packSize] = fs
    .readdirSync(path.join(root, 'data'))
    .flatMap((d) => fs.readdirSync(path.join(root, 'data', d)).map((f) => [path.join(root, 'data', d, f), fs.statSync(path.join(root, 'data', d, f)).size] as const))
    .sort((a, b) => b[1] - a[1])[0]!;
  fs.rmSync(path.join(src, 'gone1'));
  fs.rmSync(path.join(src, 'gone2'));
  const second = await backup([store], [src], { packSize: 8 << 20 });
  const before = await allContent([store]);
  await withRepo([store], (repo) => forgetSnapshots(repo, { ids: [first], groupBy: [] }));
  return { store, pack, packSize, second, before };
}

function flipByte(file: string, at: number): void {
  const bytes = fs.readFileSync(file);
  bytes[at]! ^= 0x40;
  fs.writeFileSync(file, bytes);
}

test('a mostly unused pack is repacked from the ranges of its kept blobs, not read whole', { timeout: 120_000 }, async (t) => {
  const { store, pack, packSize, second, before } = await mostlyUnusedPack(t);
  store.packReads.length = 0;
  const result = await prune([store], { maxUnused: { kind: 'percent', percent: 0 } });
  assert.equal(result.repacked.packs, 1, JSON.stringify(result.repacked));
  const reads = store.packReads.filter((r) => pack.endsWith(r.name.split('/').pop()!));
  assert.ok(reads.length > 0, 'the pack was read');
  assert.deepEqual(reads.filter((r) => r.range === undefined), [], 'never read whole');
  const bytesRead = reads.reduce((sum, r) => sum + r.range!.length, 0);
  assert.ok(bytesRead < packSize / 10, `read ${bytesRead} of a ${packSize}-byte pack to keep a 20 kB file`);

  assert.deepEqual(await checkErrors([store]), []);
  const after = await allContent([store]);
  assert.deepEqual([...after.keys()], [second]);
  assert.deepEqual(after.get(second), before.get(second), 'the kept file reads back identical');
});

test('a pack whose kept blob is damaged is not repacked: it stays as it is, nothing of it is copied, the damage is reported', { timeout: 120_000 }, async (t) => {
  const { store, pack } = await mostlyUnusedPack(t);
  flipByte(pack, 100);
  const damagedBytes = fs.readFileSync(pack);
  const warnings: string[] = [];
  const result = await prune([store], { maxUnused: { kind: 'percent', percent: 0 }, onWarning: (m) => warnings.push(m) });
  assert.equal(result.repacked.packs, 0);
  assert.equal(result.damaged.length, 1);
  assert.ok(pack.endsWith(result.damaged[0]!), `${result.damaged[0]} is the damaged pack`);
  assert.match(warnings.join('\n'), /cannot be repacked.*kept as it is/);
  assert.deepEqual(fs.readFileSync(pack), damagedBytes, 'the pack is kept byte for byte');
  assert.ok((await checkErrors([store])).some((e) => e.includes(path.basename(pack))), 'check still points at it');
});

test('damage only in the part of a pack that is dropped does not stop the repack: the kept blobs are checked one by one', { timeout: 120_000 }, async (t) => {
  const { store, pack, packSize, second, before } = await mostlyUnusedPack(t);
  // Well inside the two dropped files (the kept 20 kB blob is first, the header last).
  flipByte(pack, Math.floor(packSize / 2));
  const result = await prune([store], { maxUnused: { kind: 'percent', percent: 0 } });
  assert.equal(result.repacked.packs, 1);
  assert.deepEqual(result.damaged, []);
  assert.equal(fs.existsSync(pack), false, 'the old pack is gone once its kept blob is stored again');
  assert.deepEqual(await checkErrors([store]), []);
  assert.deepEqual((await allContent([store])).get(second), before.get(second));
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
