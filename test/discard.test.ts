// Buffers freed as soon as they are dead (src/format/discard.ts): the backup's chunk workers and the
// restore workers make one or more buffers per blob, which V8 would otherwise let pile up between
// collections (bench/PROFILE.md).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { discard } from '../src/format/discard.ts';
import { BlobType, PackWriter, openBlob, packKey } from '../src/format/pack.ts';

test('discard frees a buffer that owns its memory, and leaves views and pool slices alone', () => {
  const own = Buffer.allocUnsafe(64 * 1024);
  discard(own);
  assert.equal(own.buffer.byteLength, 0);
  assert.equal(own.byteLength, 0);

  const parent = Buffer.alloc(64 * 1024, 7);
  const view = parent.subarray(1024, 2048);
  discard(view);
  assert.equal(parent.buffer.byteLength, 64 * 1024);

  const pooled = Buffer.from('small');
  const neighbour = Buffer.from('other');
  discard(pooled);
  assert.equal(pooled.toString(), 'small');
  assert.equal(neighbour.toString(), 'other');
});

test('a pack keeps no dead ciphertext per blob added', () => {
  const key = crypto.randomBytes(32);
  const blob = crypto.randomBytes(1024 * 1024);
  const writer = new PackWriter(key, { capacity: 20 * 1024 * 1024 });
  const ids: Buffer[] = [];
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 16; i++) {
    ids.push(crypto.randomBytes(32));
    writer.add(BlobType.Data, ids[i]!, { flag: 0, body: blob }, blob.length);
  }
  // The pack's own buffer is reserved by V8, outside this count; 16 dead 1 MiB ciphertexts would be in it.
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 4 * 1024 * 1024, `${grown} bytes of buffers left behind by 16 blobs of 1 MiB`);
  // And the pack still holds every blob.
  const sealed = writer.seal();
  const packed = packKey(key, sealed.salt);
  assert.equal(sealed.entries.length, 16);
  for (const e of sealed.entries) {
    const framed = openBlob(packed, e.offset, e.type, e.id, sealed.bytes.subarray(e.offset, e.offset + e.length), 'blob');
    assert.ok(framed.subarray(1).equals(blob));
  }
});
