// Plaintext framing of every blob and object: one flag byte, then the payload (zstd when that saves
// space, else raw, so incompressible data such as photos costs only the failed attempt).
import { FormatError } from './bytes.ts';
import { zstd, ZstdTooLarge } from './zstd-backend.ts';

const RAW = 0;
const ZSTD = 1;

/** zstd level 3: the speed/ratio point restic's "auto" mode also chooses. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** A payload and its flag, kept apart so a pack can encrypt them without first copying them together. */
export interface Framed {
  readonly flag: number;
  readonly body: Uint8Array;
}

/** Chunks at least this big are probed before they are compressed. */
const PROBE_FROM = 128 * 1024;
const PROBE_BYTES = 16 * 1024;

/**
 * Whether samples from the start, middle and end of a big chunk shrink: photos, videos and archives do
 * not, and compressing a whole chunk of them only to throw the result away costs more than chunking it.
 * A chunk is stored raw only when none of its samples shrinks (a disk image mixes both kinds).
 */
function worthCompressing(raw: Uint8Array): boolean {
  if (raw.length < PROBE_FROM) return true;
  for (const at of [0, (raw.length - PROBE_BYTES) >> 1, raw.length - PROBE_BYTES]) {
    const sample = zstd.compress(raw.subarray(at, at + PROBE_BYTES), 1);
    if (sample.length < PROBE_BYTES * 0.97) return true;
  }
  return false;
}

export function compress(raw: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Framed {
  if (level > 0 && raw.length > 64 && worthCompressing(raw)) {
    const packed = zstd.compress(raw, level);
    if (packed.length + 1 < raw.length) return { flag: ZSTD, body: packed };
  }
  return { flag: RAW, body: raw };
}

/** The flag byte followed by the body, as one buffer (standalone objects). */
export function compressPayload(raw: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Buffer {
  const { flag, body } = compress(raw, level);
  const out = Buffer.allocUnsafe(1 + body.length);
  out[0] = flag;
  out.set(body, 1);
  return out;
}

/** How long a payload must come out: exactly n bytes (a blob, whose length the index records), or at most n. */
export type PlainSize = number | { readonly atMost: number };

/**
 * The plaintext of a framed payload. Decompression stops at the size the context allows, so a small
 * hostile frame cannot expand into gigabytes (a zstd "bomb"). `into`: a buffer the plaintext may be written
 * to (see ZstdDecompress), for a caller that only checks it.
 */
export function decompressPayload(framed: Uint8Array, size: PlainSize, what: string, into?: Buffer): Buffer {
  if (framed.length === 0) throw new FormatError(`${what}: the payload is empty`);
  const exact = typeof size === 'number' ? size : undefined;
  const max = typeof size === 'number' ? size : size.atMost;
  const body = Buffer.from(framed.buffer, framed.byteOffset + 1, framed.byteLength - 1);
  let raw: Buffer;
  switch (framed[0]) {
    case RAW:
      raw = body;
      break;
    case ZSTD:
      // Writers never compress what is tiny, let alone nothing.
      if (max === 0) throw new FormatError(`${what}: a compressed payload where an empty one belongs`);
      try {
        raw = zstd.decompress(body, max, into);
      } catch (err) {
        if (err instanceof ZstdTooLarge) throw new FormatError(`${what}: decompresses to more than the ${max} bytes it may have`);
        throw new FormatError(`${what}: zstd data is damaged (${(err as Error).message})`);
      }
      break;
    default:
      throw new FormatError(`${what}: unknown compression flag ${framed[0]}`);
  }
  if (exact !== undefined && raw.length !== exact) throw new FormatError(`${what}: decompressed to ${raw.length} bytes, index says ${exact}`);
  if (raw.length > max) throw new FormatError(`${what}: ${raw.length} bytes, more than the ${max} it may have`);
  return raw;
}
