// Plaintext framing of every blob and object: one flag byte, then the payload (zstd when that saves
// space, else raw, so incompressible data such as photos costs only the failed attempt).
import zlib from 'node:zlib';
import { FormatError } from './bytes.ts';

const RAW = 0;
const ZSTD = 1;

/** zstd level 3: the speed/ratio point restic's "auto" mode also chooses. */
export const DEFAULT_ZSTD_LEVEL = 3;

export function compressPayload(raw: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Buffer {
  if (level > 0 && raw.length > 64) {
    const packed = zlib.zstdCompressSync(raw, {
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: level,
        [zlib.constants.ZSTD_c_checksumFlag]: 0,
        [zlib.constants.ZSTD_c_contentSizeFlag]: 1,
      },
    });
    if (packed.length + 1 < raw.length) return Buffer.concat([Buffer.of(ZSTD), packed]);
  }
  const out = Buffer.allocUnsafe(raw.length + 1);
  out[0] = RAW;
  out.set(raw, 1);
  return out;
}

export function decompressPayload(framed: Uint8Array, expectedLength: number | undefined, what: string): Buffer {
  const body = Buffer.from(framed.buffer, framed.byteOffset + 1, framed.byteLength - 1);
  let raw: Buffer;
  switch (framed[0]) {
    case RAW:
      raw = body;
      break;
    case ZSTD:
      try {
        raw = zlib.zstdDecompressSync(body, expectedLength ? { maxOutputLength: expectedLength } : {});
      } catch (err) {
        throw new FormatError(`${what}: zstd data is damaged (${(err as Error).message})`);
      }
      break;
    default:
      throw new FormatError(`${what}: unknown compression flag ${framed[0]}`);
  }
  if (expectedLength !== undefined && raw.length !== expectedLength) {
    throw new FormatError(`${what}: decompressed to ${raw.length} bytes, index says ${expectedLength}`);
  }
  return raw;
}
