// FastCDC content-defined chunking (Xia et al., 2016/2020) with normalized chunking level 2 and a gear
// table derived from the repository's secret chunker seed, so cut points do not reveal content. The hash
// is kept in int32 arithmetic: V8 falls back to doubles (5x slower) with unsigned 32-bit values.
import crypto from 'node:crypto';

export interface ChunkerParams {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 };

/** 256 int32 gear values: HMAC-SHA256(seed, "coffer gear " + i) for i = 0..31, each digest read as 8 big-endian words. */
export function gearTable(seed: Uint8Array): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 32; i++) {
    const digest = crypto.createHmac('sha256', seed).update(`coffer gear ${i}`).digest();
    for (let j = 0; j < 8; j++) table[i * 8 + j] = digest.readInt32BE(j * 4);
  }
  return table;
}

/** Mask with `bits` one-bits at the top of a 32-bit word: the high bits of a gear hash depend on the most bytes. */
function topBitsMask(bits: number): number {
  return (~0 << (32 - bits)) | 0;
}

export class Chunker {
  private readonly gear: Int32Array;
  private readonly maskSmall: number;
  private readonly maskLarge: number;
  readonly params: ChunkerParams;

  constructor(seed: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER) {
    const bits = Math.log2(params.avg);
    if (!Number.isInteger(bits) || params.min >= params.avg || params.avg >= params.max) {
      throw new RangeError('chunker: avg must be a power of two with min < avg < max');
    }
    this.gear = gearTable(seed);
    this.params = params;
    this.maskSmall = topBitsMask(bits + 2);
    this.maskLarge = topBitsMask(bits - 2);
  }

  /**
   * End (exclusive) of the chunk that starts at `start`. The caller passes either at least `max` bytes
   * (end - start >= max) or everything up to the end of the file, so the answer never depends on how
   * the file was read.
   */
  nextCut(buf: Uint8Array, start: number, end: number): number {
    const { min, avg, max } = this.params;
    const available = end - start;
    if (available <= min) return end;
    const limit = start + Math.min(available, max);
    const normal = start + Math.min(avg, available);
    const gear = this.gear;
    const maskSmall = this.maskSmall;
    const maskLarge = this.maskLarge;
    let hash = 0;
    let i = start + min;
    for (; i < normal; i++) {
      hash = ((hash << 1) + gear[buf[i]!]!) | 0;
      if ((hash & maskSmall) === 0) return i + 1;
    }
    for (; i < limit; i++) {
      hash = ((hash << 1) + gear[buf[i]!]!) | 0;
      if ((hash & maskLarge) === 0) return i + 1;
    }
    return limit;
  }
}
