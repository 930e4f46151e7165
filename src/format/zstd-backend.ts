// zstd for one whole buffer at a time: one standard frame (content size in the header, no checksum).
// node:zlib builds a new context for every call (20–35 µs, a large share of a small file's blob) and
// gathers its output in 16 KiB pieces; zstd-napi keeps one compression and one decompression context per
// thread and writes each result in one piece: −40 % compression and −55 % decompression CPU on the kernel
// and npm blob mixes, same sizes (bench/PROFILE.md). zstd-napi is an optional native dependency: where it
// could not be built, node:zlib does the work.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

export type ZstdCompress = (raw: Uint8Array, level: number) => Uint8Array;
/**
 * The plaintext of a frame, of at most `max` (≥ 1) bytes; a frame that holds more throws ZstdTooLarge.
 * Given `into`, a plaintext that fits may be written there (the result is then a view of it): for a caller
 * that only checks the plaintext and would otherwise leave a dead buffer per blob to the collector.
 */
export type ZstdDecompress = (frame: Uint8Array, max: number, into?: Buffer) => Buffer;

export class ZstdTooLarge extends Error {}

/** Level 3's own window; smaller inputs get a window just big enough (cheaper to set up, same output size). */
const MAX_WINDOW_LOG = 21;

export const nodeZstdCompress: ZstdCompress = (raw, level) => {
  const windowLog = Math.min(MAX_WINDOW_LOG, Math.max(10, Math.ceil(Math.log2(raw.length))));
  return zlib.zstdCompressSync(raw, {
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      [zlib.constants.ZSTD_c_windowLog]: windowLog,
      [zlib.constants.ZSTD_c_checksumFlag]: 0,
      [zlib.constants.ZSTD_c_contentSizeFlag]: 1,
    },
  });
};

export const nodeZstdDecompress: ZstdDecompress = (frame, max) => {
  try {
    return zlib.zstdDecompressSync(frame, { maxOutputLength: max });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new ZstdTooLarge();
    throw err;
  }
};

const require = createRequire(import.meta.url);

function loadAddon<T>(name: string): T | undefined {
  try {
    return require(name) as T;
  } catch {
    return undefined;
  }
}

/**
 * zstd-napi's compressor for this thread, or undefined where the addon is not installed or does not load.
 * It compresses into one scratch buffer of this thread, reused, and returns a copy of exactly the frame's
 * size: zstd-napi's own Compressor allocates a buffer of the worst-case size for every input over
 * 128 KiB and drops it after copying, and those dead buffers piled up in the chunk workers between
 * collections (bench/PROFILE.md, "Backup memory: dead buffers freed at once"). The scratch grows to
 * the largest input's bound (at most the chunker's maximal chunk).
 */
export function nativeZstdCompress(): ZstdCompress | undefined {
  const binding = loadAddon<typeof import('zstd-napi/binding.js')>('zstd-napi/binding.js');
  if (!binding) return undefined;
  const context = new binding.CCtx();
  let scratch = Buffer.alloc(0);
  let currentLevel: number | undefined;
  return (raw, level) => {
    if (level !== currentLevel) {
      // One-shot compression knows the input's size, so zstd sizes the window to it by itself.
      context.reset(binding.ResetDirective.parameters);
      context.setParameter(binding.CParameter.compressionLevel, level);
      context.setParameter(binding.CParameter.checksumFlag, 0);
      context.setParameter(binding.CParameter.contentSizeFlag, 1);
      currentLevel = level;
    }
    const bound = binding.compressBound(raw.length);
    if (scratch.length < bound) scratch = Buffer.allocUnsafe(bound);
    const written = context.compress2(scratch, raw);
    return Buffer.from(scratch.subarray(0, written));
  };
}

/** zstd-napi's decompressor for this thread, or undefined where the addon is not installed or does not load. */
export function nativeZstdDecompress(): ZstdDecompress | undefined {
  const binding = loadAddon<typeof import('zstd-napi/binding.js')>('zstd-napi/binding.js');
  if (!binding) return undefined;
  const context = new binding.DCtx();
  return (frame, max, into) => {
    const size = binding.getFrameContentSize(frame);
    // A frame without its size (Coffer writes none, a hostile repository may) is streamed, bounded, by node:zlib.
    if (size === null) return nodeZstdDecompress(frame, max);
    if (size > max) throw new ZstdTooLarge();
    // Exactly the declared size: a frame holding more (or a second frame behind it) fails instead of growing.
    const raw = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    const written = context.decompress(raw, frame);
    if (written !== size) throw new Error(`the frame declares ${size} bytes and holds ${written}`);
    return raw;
  };
}

const compress = nativeZstdCompress();
const decompress = nativeZstdDecompress();

/** The zstd every reader and writer uses, and its name (for tests and diagnostics). */
export const zstd: { readonly name: 'zstd-napi' | 'node:zlib'; readonly compress: ZstdCompress; readonly decompress: ZstdDecompress } =
  compress && decompress
    ? { name: 'zstd-napi', compress, decompress }
    : { name: 'node:zlib', compress: nodeZstdCompress, decompress: nodeZstdDecompress };
