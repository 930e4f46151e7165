import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import test from 'node:test';
import zlib from 'node:zlib';
import {
  nativeZstdCompress,
  nativeZstdDecompress,
  nodeZstdCompress,
  nodeZstdDecompress,
  zstd,
  ZstdTooLarge,
  type ZstdCompress,
  type ZstdDecompress,
} from '../src/format/zstd-backend.ts';

const nativeCompress = nativeZstdCompress()!;
const nativeDecompress = nativeZstdDecompress()!;

function text(bytes: number): Buffer {
  return Buffer.alloc(bytes, 'static int ext4_fill_super(struct super_block *sb, void *data, int silent)\n');
}

/** Text and random halves: a frame of compressed and raw blocks. */
function mixed(bytes: number): Buffer {
  return Buffer.concat([text(bytes >> 1), crypto.randomBytes(bytes - (bytes >> 1))]);
}

const inputs: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['65 bytes', text(65)],
  ['200 KiB of text', text(200 * 1024)],
  ['9 MiB, half random', mixed(9 * 1024 * 1024)],
  ['64 MiB of text', text(64 * 1024 * 1024)],
];

const decompressors: [string, ZstdDecompress][] = [
  ['zstd-napi', nativeDecompress],
  ['node:zlib', nodeZstdDecompress],
];

function decodesEverywhere(compress: ZstdCompress, name: string): void {
  for (const level of [1, 3, 19]) {
    for (const [what, raw] of inputs) {
      if (level === 19 && raw.length > 1024 * 1024) continue; // slow, and level 19 is not what backups use
      const frame = compress(raw, level);
      for (const [by, decompress] of decompressors) {
        assert.ok(decompress(frame, Math.max(1, raw.length)).equals(raw), `${name}, ${what}, level ${level}: decoded by ${by}`);
      }
      const descriptor = frame[4]!;
      assert.equal((descriptor >> 2) & 1, 0, `${name}, ${what}: no checksum (the pack's AEAD covers it)`);
      assert.ok(descriptor >> 6 !== 0 || (descriptor >> 5) & 1, `${name}, ${what}: the content size is in the header`);
    }
  }
}

test('zstd-napi is the zstd on this machine (CI builds it)', () => {
  assert.equal(zstd.name, 'zstd-napi');
  assert.ok(nativeZstdCompress() && nativeZstdDecompress());
});

test("zstd-napi's frames decode with zstd-napi and node:zlib, byte for byte", () => {
  decodesEverywhere(nativeCompress, 'zstd-napi');
});

test("node:zlib's frames (the fallback) decode with both too", () => {
  decodesEverywhere(nodeZstdCompress, 'node:zlib');
});

test("one reused compression context follows each call's level, and compresses as node:zlib does", () => {
  const raw = text(300 * 1024);
  const fast = nativeCompress(raw, 1);
  const strong = nativeCompress(raw, 19);
  assert.ok(strong.length < fast.length, 'level 19 after level 1 is level 19');
  assert.deepEqual(nativeCompress(raw, 1), fast, 'and back to level 1');
  for (const level of [1, 3]) {
    const size = nativeCompress(raw, level).length;
    const nodeSize = nodeZstdCompress(raw, level).length;
    assert.ok(Math.abs(size - nodeSize) <= nodeSize * 0.01, `level ${level}: ${size} bytes against node:zlib's ${nodeSize}`);
  }
});

test('each frame is a buffer of its own, and compressing leaves no worst-case buffer behind per call', () => {
  // A fresh context: the scratch it grows once is part of the count below.
  const compress = nativeZstdCompress()!;
  const raws = Array.from({ length: 16 }, (_, i) => Buffer.concat([text(512 * 1024), Buffer.from(`input ${i}`)]));
  const before = process.memoryUsage().arrayBuffers;
  const frames = raws.map((raw) => compress(raw, 3));
  const grown = process.memoryUsage().arrayBuffers - before;
  const kept = frames.reduce((sum, f) => sum + f.length, 0);
  // zstd-napi's own Compressor dropped a 512 KiB buffer (the bound) per call: 8 MiB here.
  assert.ok(grown - kept < 2 * 1024 * 1024, `${grown - kept} bytes besides the frames`);
  // A later call does not overwrite an earlier frame (the scratch is copied out).
  frames.forEach((frame, i) => assert.ok(nativeDecompress(frame, raws[i]!.length).equals(raws[i]!), `frame ${i}`));
});

test('a frame never decompresses past its bound, whatever its header says', () => {
  const raw = text(100_000);
  const sized = nativeCompress(raw, 3);
  // The header declares the size: refused before anything is allocated.
  for (const [by, decompress] of decompressors) {
    assert.throws(() => decompress(sized, raw.length - 1), ZstdTooLarge, by);
  }
  // No size in the header (a stream, as a hostile writer may make): bounded while it decompresses.
  const streamed = zlib.zstdCompressSync(raw, { params: { [zlib.constants.ZSTD_c_contentSizeFlag]: 0 } });
  assert.equal(streamed[4]! >> 6, 0);
  assert.equal((streamed[4]! >> 5) & 1, 0, 'the test frame has no content size');
  for (const [by, decompress] of decompressors) {
    assert.throws(() => decompress(streamed, raw.length - 1), ZstdTooLarge, by);
    assert.ok(decompress(streamed, raw.length).equals(raw), by);
  }
  // A second frame behind a sized one: more than the first frame declares, so not decoded into its buffer.
  const twoFrames = Buffer.concat([sized, sized]);
  assert.throws(() => nativeDecompress(twoFrames, 2 * raw.length));
  // A header that declares fewer bytes than its blocks hold, and damage in the header or the blocks.
  const understated = Buffer.from(sized);
  const descriptor = understated[4]!;
  assert.equal(descriptor >> 6, 2, 'a 4-byte content size');
  const sizeAt = (descriptor >> 5) & 1 ? 5 : 6;
  understated.writeUInt32LE(raw.length - 1000, sizeAt);
  assert.throws(() => nativeDecompress(understated, raw.length));
  assert.throws(() => nativeDecompress(sized.subarray(0, 3), raw.length));
  assert.throws(() => nativeDecompress(sized.subarray(0, sized.length - 5), raw.length));
});

test('given a buffer the plaintext fits in, zstd-napi writes it there; else, and with node:zlib, into a new one', () => {
  const raw = text(20_000);
  const frame = nativeCompress(raw, 3);
  const into = Buffer.alloc(32_000);
  const there = nativeDecompress(frame, raw.length, into);
  assert.ok(there.equals(raw));
  assert.equal(there.buffer, into.buffer, 'a view of the given buffer');
  assert.equal(there.byteOffset, into.byteOffset);
  const small = Buffer.alloc(100);
  const elsewhere = nativeDecompress(frame, raw.length, small);
  assert.ok(elsewhere.equals(raw));
  assert.notEqual(elsewhere.buffer, small.buffer);
  assert.ok(nodeZstdDecompress(frame, raw.length, into).equals(raw));
});
