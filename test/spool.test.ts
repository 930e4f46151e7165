// The spool between sealing and uploading (src/engine/spool.ts): a pack held for several destinations.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PackSpool } from '../src/engine/spool.ts';
import { tempDir } from './helpers/cli.ts';

test("a pack's memory is freed when the last destination releases it, not before", async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(path.join(dir, 'spool'));
  const bytes = new Uint8Array(1024 * 1024).fill(7);
  const entry = spool.add(bytes, 2);
  const first = await entry.load();
  entry.release();
  // The other destination is still uploading what it loaded.
  assert.equal(first.length, 1024 * 1024);
  assert.equal((await entry.load())[1000], 7);
  entry.release();
  assert.equal(bytes.buffer.byteLength, 0, 'freed once both have it');
});

test('a pack spilled to disk is read back whole, and its file goes with the last release', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(path.join(dir, 'spool'), { memory: 1024, disk: 1024 * 1024 });
  const bytes = new Uint8Array(4096).fill(9);
  const entry = spool.add(bytes, 1);
  assert.equal(spool.onDisk, 4096);
  assert.deepEqual(await entry.load(), Buffer.from(new Uint8Array(4096).fill(9)));
  entry.release();
  assert.equal(spool.onDisk, 0);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'spool')), []);
});

test('a pack whose upload failed or was stopped is left to the collector: the store may still read it', async (t) => {
  const dir = tempDir(t);
  const spool = new PackSpool(path.join(dir, 'spool'));
  const bytes = new Uint8Array(1024 * 1024).fill(5);
  const entry = spool.add(bytes, 2);
  entry.release(true);
  entry.release();
  assert.equal(bytes.buffer.byteLength, 1024 * 1024, 'not detached under a request that may still send it');
  assert.equal(bytes[1000], 5);
});
