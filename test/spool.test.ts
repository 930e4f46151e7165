// The spool between sealing and uploading (src/engine/spool.ts): a pack held for several destinations.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkSpoolDirectory, PackSpool, SpoolFile } from '../src/engine/spool.ts';
import { tempDir } from './helpers/cli.ts';
import { openFilesUnder } from './helpers/open-files.ts';

test("a pack's memory is freed when the last destination releases it, not before", async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir);
  const bytes = new Uint8Array(1024 * 1024).fill(7);
  const [fast, slow] = spool.add(bytes, 2);
  const first = await fast!.load();
  fast!.release('stored');
  // The other destination is still uploading what it loaded.
  assert.equal(first.length, 1024 * 1024);
  assert.equal((await slow!.load())[1000], 7);
  slow!.release('stored');
  assert.equal(bytes.buffer.byteLength, 0, 'freed once both have it');
});

// Regression: the spool wrote the oldest packs to disk whoever still needed them. With one destination
// slower than the reading (a local disk behind two chunk workers), a backup of 1 GiB of big files wrote
// 455 MiB to the spool and read it back, for nothing: every pack still had to go to that one destination.
test('a pack no destination has stored stays in memory past the limit; once one has it, it goes to disk for the others', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir, { memory: 1024, disk: 1024 * 1024 });
  const [only] = spool.add(new Uint8Array(4096).fill(1), 1);
  const [fast, slow] = spool.add(new Uint8Array(4096).fill(2), 2);
  assert.equal(spool.onDisk, 0, 'every destination still needs both');
  assert.equal((await fast!.load())[0], 2);
  fast!.release('stored');
  assert.equal(spool.onDisk, 4096, 'the slow destination reads it from disk');
  assert.deepEqual(await slow!.load(), Buffer.from(new Uint8Array(4096).fill(2)));
  slow!.release('stored');
  only!.release('stored');
  assert.equal(spool.onDisk, 0);
});

test('a pack spilled to disk is read back whole, and its file goes with the last release', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir, { memory: 1024, disk: 1024 * 1024 });
  const bytes = new Uint8Array(4096).fill(9);
  const [fast, slow] = spool.add(bytes, 2);
  fast!.release('stored');
  assert.equal(spool.onDisk, 4096);
  assert.deepEqual(openFilesUnder(dir).map((f) => f.endsWith('.pack (deleted)')), [true], 'held open, unlinked');
  assert.deepEqual(await slow!.load(), Buffer.from(new Uint8Array(4096).fill(9)));
  slow!.release('stored');
  assert.equal(spool.onDisk, 0);
  assert.deepEqual(openFilesUnder(dir), []);
  assert.deepEqual(fs.readdirSync(dir), []);
});

// A file system that refuses to remove an open file (some SMB shares; here an append-only directory, in
// which files can be made but not removed) keeps the spool working: the file keeps its name until released.
test('a spool directory that refuses to remove open files still spools, and the file goes with the last release', async (t) => {
  const dir = tempDir(t);
  const appendOnly = spawnSync('chattr', ['+a', dir]);
  if (appendOnly.status !== 0) return t.skip(`chattr +a is not available here: ${appendOnly.stderr}`);
  t.after(() => spawnSync('chattr', ['-a', dir]));
  const spool = new PackSpool(dir, { memory: 1024, disk: 1024 * 1024 });
  const [fast, slow] = spool.add(new Uint8Array(4096).fill(5), 2);
  fast!.release('stored');
  assert.equal(spool.onDisk, 4096);
  assert.equal(fs.readdirSync(dir).length, 1, 'the spool file keeps its name');
  assert.deepEqual(await slow!.load(), Buffer.from(new Uint8Array(4096).fill(5)));
  // The share lets go of files once they are closed.
  spawnSync('chattr', ['-a', dir]);
  slow!.release('stored');
  assert.deepEqual(openFilesUnder(dir), []);
  assert.deepEqual(fs.readdirSync(dir), []);
});

// Regression: spooled packs were named files in a coffer-spool-* folder that only the run removed: a
// backup killed outright (SIGKILL, the OOM killer) left them in /tmp for good, up to the disk limit of 4 GiB.
test('a pack on disk has no name in the spool directory: a process killed outright leaves nothing there', async (t) => {
  const dir = tempDir(t);
  const spoolModule = new URL('../src/engine/spool.ts', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { PackSpool } = await import(${JSON.stringify(spoolModule)});
    const spool = new PackSpool(${JSON.stringify(dir)}, { memory: 1024, disk: 1 << 20 });
    const [fast] = spool.add(new Uint8Array(8192).fill(1), 2);
    fast.release('stored');
    process.stdout.write(String(spool.onDisk));
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const [spilled] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(spilled.toString(), '8192', 'the child wrote the pack out');
  assert.equal(openFilesUnder(dir, child.pid!).length, 1);
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('the spool closing lets go of the packs still on disk, after a read under way has finished', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir, { memory: 1024, disk: 1024 * 1024 });
  const [fast, slow, stopped] = spool.add(new Uint8Array(1 << 20).fill(6), 3);
  fast!.release('stored');
  const reading = slow!.load();
  spool.close();
  // Its descriptor was not closed under the read (a reused descriptor number would read another file).
  assert.deepEqual(await reading, Buffer.from(new Uint8Array(1 << 20).fill(6)));
  assert.deepEqual(openFilesUnder(dir), []);
  await assert.rejects(stopped!.load(), /the backup has ended/);
  slow!.release('stored');
  stopped!.release('dropped');
});

test('a spool directory that is missing, a file or not writable is refused with one line', (t) => {
  const dir = tempDir(t);
  assert.equal(checkSpoolDirectory(dir), dir);
  assert.throws(() => checkSpoolDirectory(path.join(dir, 'missing')), { message: `cannot use ${path.join(dir, 'missing')} as the spool directory: it does not exist` });
  fs.writeFileSync(path.join(dir, 'file'), '');
  assert.throws(() => checkSpoolDirectory(path.join(dir, 'file')), { message: /as the spool directory: it is not a directory$/ });
});

test('a pack whose upload failed or was stopped is left to the collector: the store may still read it', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir);
  const bytes = new Uint8Array(1024 * 1024).fill(5);
  const [failed, stored] = spool.add(bytes, 2);
  failed!.release('failed');
  stored!.release('stored');
  assert.equal(bytes.buffer.byteLength, 1024 * 1024, 'not detached under a request that may still send it');
  assert.equal(bytes[1000], 5);
});

// Regression: a pack written to disk kept its memory until a collection, and V8 does not count a
// resizable buffer's memory as its own, so none came: a backup whose spool spilled grew by every pack.
test("a pack written to disk gives up its memory at once", async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir, { memory: 1024, disk: 1024 * 1024 });
  const bytes = new Uint8Array(new ArrayBuffer(4096, { maxByteLength: 8192 })).fill(3);
  const [fast, slow] = spool.add(bytes, 2);
  fast!.release('stored');
  assert.equal(spool.onDisk, 4096);
  assert.equal(bytes.buffer.byteLength, 0, 'freed once on disk');
  assert.equal((await slow!.load())[4095], 3);
  slow!.release('stored');
});

test('a pack a destination is sending stays in memory; the next one not being read goes to disk', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir, { memory: 6000, disk: 1024 * 1024 });
  const sending = new Uint8Array(4096).fill(1);
  const [fast, slow] = spool.add(sending, 2);
  fast!.release('stored');
  const inFlight = await slow!.load();
  const waiting = new Uint8Array(4096).fill(2);
  const [fast2, slow2] = spool.add(waiting, 2);
  fast2!.release('stored');
  assert.equal(spool.onDisk, 4096, 'one pack went to disk');
  assert.equal(inFlight.byteLength, 4096, 'not the one being sent');
  assert.equal(inFlight[4095], 1);
  assert.equal(waiting.buffer.byteLength, 0, 'the one no one was reading');
  slow!.release('stored');
  assert.equal(sending.buffer.byteLength, 0);
  assert.equal((await slow2!.load())[0], 2);
  slow2!.release('stored');
});

test('a pack in a spool file is read for each destination into a buffer used again after a stored upload, never after a failed one', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir);
  t.after(() => spool.close());
  const spooled = (fill: number): SpoolFile => {
    const file = SpoolFile.create(dir);
    file.append(new Uint8Array(4096).fill(fill));
    return file;
  };
  const [a, b] = spool.add(spooled(4), 2);
  assert.equal(spool.onDisk, 4096);
  const first = await a!.load();
  assert.equal(first[4095], 4);
  a!.release('stored');
  const second = await b!.load();
  assert.equal(second.buffer, first.buffer, 'the first upload is over: its buffer reads the next');
  b!.release('failed');
  assert.equal(spool.onDisk, 0);
  assert.deepEqual(openFilesUnder(dir), [], 'the file goes with the last release');
  const [c] = spool.add(spooled(5), 1);
  const third = await c!.load();
  assert.notEqual(third.buffer, second.buffer, 'a failed upload may still be reading its buffer');
  assert.equal(second[0], 4, 'and it is left as it was');
  assert.equal(third[0], 5);
  c!.release('stored');
});

test('a pack in a spool file is read where it lies for a store that copies from it, and not once the last hold is released', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(dir);
  t.after(() => spool.close());
  const file = SpoolFile.create(dir);
  file.append(new Uint8Array(4096).fill(6));
  const [hold] = spool.add(file, 1);
  const source = hold!.source()!;
  assert.equal(source.size, 4096);
  const into = new Uint8Array(100);
  assert.equal(await source.read(into, 4000), 96);
  assert.equal(into[95], 6);
  hold!.release('failed');
  // Its descriptor is closed, and its number may be another file's by now.
  await assert.rejects(source.read(into, 0), /holds the pack no more/);
  const [inMemory] = spool.add(new Uint8Array(10), 1);
  assert.equal(inMemory!.source(), undefined, 'a pack in memory is loaded whole');
  inMemory!.release('stored');
});
