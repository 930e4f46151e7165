// Deterministic synthetic corpora. Bytes come from AES-256-CTR keystreams keyed by SHA-256(seed, stream
// name): several GB/s through OpenSSL, identical on every machine and Node version, and independent per
// stream, so a dataset's layout does not shift when the content of one of its parts changes.
import { createCipheriv, createHash, type Cipheriv } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

const MiB = 1 << 20;
const ZEROS = Buffer.alloc(MiB);

export class Prng {
  private readonly cipher: Cipheriv;
  private pool: Buffer = Buffer.alloc(0);
  private pos = 0;

  constructor(seed: string, stream: string) {
    const key = createHash('sha256').update(`${seed}\0${stream}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  /** The next `n` (≤ 1 MiB) keystream bytes: incompressible data. */
  bytes(n: number): Buffer {
    return this.cipher.update(ZEROS.subarray(0, n));
  }

  uint32(): number {
    if (this.pos + 4 > this.pool.length) {
      this.pool = this.bytes(64 * 1024);
      this.pos = 0;
    }
    const v = this.pool.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Uniform in [0, n); the modulo bias is negligible for the small n used here. */
  below(n: number): number {
    return this.uint32() % n;
  }
}

/**
 * Text-like bytes: words drawn from a random 4096-word dictionary, ~1.7 bits of entropy per byte, which
 * zstd-3 compresses about 3× — close to source code and logs, so compression speed and ratio matter.
 */
export class TextSource {
  private readonly prng: Prng;
  private readonly words: Buffer[] = [];

  constructor(prng: Prng) {
    this.prng = prng;
    for (let i = 0; i < 4096; i++) {
      const letters = prng.bytes(2 + prng.below(9));
      for (let j = 0; j < letters.length; j++) letters[j] = 0x61 + (letters[j]! % 26);
      this.words.push(letters);
    }
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let pos = 0;
    while (pos < n) {
      const r = this.prng.uint32();
      pos += this.words[r & 4095]!.copy(out, pos);
      if (pos < n) out[pos++] = (r >>> 12) % 12 === 0 ? 0x0a : 0x20;
    }
    return out;
  }
}

function writeRandomFile(path: string, prng: Prng, size: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; left -= MiB) writeSync(fd, prng.bytes(Math.min(MiB, left)));
  } finally {
    closeSync(fd);
  }
}

export interface PhotoParams {
  readonly count: number;
  readonly minMiB: number;
  readonly maxMiB: number;
}

/** A photo library: `count` incompressible files of minMiB..maxMiB, in one folder per year. */
export function generatePhotos(dir: string, seed: string, p: PhotoParams): void {
  const sizes = new Prng(seed, 'photos/sizes');
  for (let i = 0; i < p.count; i++) {
    const size = (p.minMiB + sizes.below(p.maxMiB - p.minMiB + 1)) * MiB - sizes.below(MiB);
    const path = join(dir, String(2015 + (i % 10)), `IMG_${String(i).padStart(5, '0')}.JPG`);
    mkdirSync(dirname(path), { recursive: true });
    writeRandomFile(path, new Prng(seed, `photos/${i}`), size);
  }
}

type ExtentKind = 'zero' | 'text' | 'random';

/** Block-device contents: 1 MiB extents, ~40% never written (zeros), ~30% text-like, ~30% incompressible. */
function vmExtentKind(layout: Prng): ExtentKind {
  const r = layout.below(10);
  return r < 4 ? 'zero' : r < 7 ? 'text' : 'random';
}

/** A raw VM disk image of `sizeMiB`. */
export function generateVmImage(file: string, seed: string, sizeMiB: number): void {
  const layout = new Prng(seed, 'vm/layout');
  const random = new Prng(seed, 'vm/random');
  const text = new TextSource(new Prng(seed, 'vm/text'));
  mkdirSync(dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  try {
    for (let i = 0; i < sizeMiB; i++) {
      const kind = vmExtentKind(layout);
      writeSync(fd, kind === 'zero' ? ZEROS : kind === 'text' ? text.bytes(MiB) : random.bytes(MiB));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The next version of a VM image: a copy with `edits` in-place writes of 4–256 KiB at random 4 KiB-aligned
 * offsets, the way a guest file system rewrites blocks; the file size stays the same.
 */
export function editVmImage(from: string, to: string, seed: string, sizeMiB: number, edits: number): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  const prng = new Prng(seed, 'vm/edits');
  const text = new TextSource(new Prng(seed, 'vm/edit-text'));
  const blocks = (sizeMiB * MiB) / 4096;
  const fd = openSync(to, 'r+');
  try {
    for (let i = 0; i < edits; i++) {
      const length = (1 + prng.below(64)) * 4096;
      const offset = prng.below(blocks - length / 4096) * 4096;
      writeSync(fd, prng.below(2) ? text.bytes(length) : prng.bytes(length), 0, length, offset);
    }
  } finally {
    closeSync(fd);
  }
}

const FILES_PER_DIR = 1000;
const DIRS_PER_GROUP = 10;

/** `count` small files of 0–4 KiB (incompressible), 1000 per directory, 10 directories per group. */
export function generateSmallFiles(dir: string, seed: string, count: number): void {
  const prng = new Prng(seed, 'files');
  for (let first = 0; first < count; first += FILES_PER_DIR) {
    const leaf = first / FILES_PER_DIR;
    const leafDir = join(dir, `g${String(Math.floor(leaf / DIRS_PER_GROUP)).padStart(3, '0')}`, `d${leaf % DIRS_PER_GROUP}`);
    mkdirSync(leafDir, { recursive: true });
    const n = Math.min(FILES_PER_DIR, count - first);
    const sizes = Array.from({ length: n }, () => prng.below(4097));
    // One keystream call per directory: per-file cipher calls would dominate the generation time.
    const block = prng.bytes(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (let i = 0; i < n; i++) {
      writeFileSync(join(leafDir, `f${String(i).padStart(4, '0')}.dat`), block.subarray(at, at + sizes[i]!));
      at += sizes[i]!;
    }
  }
}
