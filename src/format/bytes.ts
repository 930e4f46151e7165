// Growable byte writer and bounds-checked reader for the binary encodings (trees, index files, pack
// headers). Integers are unsigned LEB128 varints; signed values (times before 1970) are zigzag-encoded.

export class FormatError extends Error {
  override name = 'FormatError';
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_U64 = (1n << 64n) - 1n;

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(value: number): this {
    this.ensure(1);
    this.buf[this.pos++] = value;
    return this;
  }

  /** Unsigned varint for values up to 2^53 - 1. */
  uint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not an unsigned integer: ${value}`);
    this.ensure(8);
    while (value >= 0x80) {
      this.buf[this.pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buf[this.pos++] = value;
    return this;
  }

  /** Unsigned varint for any 64-bit value (inode and device numbers). */
  bigUint(value: bigint): this {
    if (value < 0n || value > MAX_U64) throw new RangeError(`not an unsigned 64-bit integer: ${value}`);
    if (value <= MAX_SAFE) return this.uint(Number(value));
    // Two 32-bit halves in Numbers: a handful of BigInt operations instead of two per byte.
    let hi = Number(value >> 32n);
    let lo = Number(value & 0xffffffffn);
    this.ensure(10);
    while (hi > 0 || lo >= 0x80) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
    return this;
  }

  /** Zigzag varint for signed 64-bit values (nanosecond timestamps). */
  bigInt(value: bigint): this {
    return this.bigUint(value >= 0n ? value << 1n : ((-value) << 1n) - 1n);
  }

  bytes(data: Uint8Array): this {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
    return this;
  }

  /** Length-prefixed byte string. */
  lengthPrefixed(data: Uint8Array): this {
    return this.uint(data.length).bytes(data);
  }

  get length(): number {
    return this.pos;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * A varint whose last byte is zero (0x80 0x00 for 0) holds a value a shorter one writes: the writer never
 * makes one, and accepting it would give one tree, index or header more than one encoding.
 */
const NOT_MINIMAL = 'varint longer than its value needs';

export class ByteReader {
  private pos = 0;
  private readonly buf: Uint8Array;
  private readonly what: string;

  constructor(buf: Uint8Array, what: string) {
    this.buf = buf;
    this.what = what;
  }

  private fail(detail: string): never {
    throw new FormatError(`malformed ${this.what}: ${detail} at byte ${this.pos}`);
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('unexpected end');
    return this.buf[this.pos++]!;
  }

  uint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (b === 0 && i > 0) this.fail(NOT_MINIMAL);
        if (!Number.isSafeInteger(result)) this.fail('integer too large');
        return result;
      }
      scale *= 0x80;
    }
    return this.fail('integer too large');
  }

  bigUint(): bigint {
    // Bytes go into two 32-bit halves held in Numbers; one BigInt is made at the end.
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      const bits = b & 0x7f;
      const shift = 7 * i;
      if (shift < 32) {
        lo = (lo | (bits << shift)) >>> 0;
        if (shift > 25) hi = (hi | (bits >>> (32 - shift))) >>> 0;
      } else if (shift < 64) {
        hi = (hi | (bits << (shift - 32))) >>> 0;
        if (shift === 63 && bits > 1) this.fail('integer too large');
      }
      if (b === 0 && i > 0) this.fail(NOT_MINIMAL);
      if (b < 0x80) return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
    }
    return this.fail('integer too large');
  }

  bigInt(): bigint {
    const z = this.bigUint();
    return z & 1n ? -((z + 1n) >> 1n) : z >> 1n;
  }

  bytes(length: number): Uint8Array {
    if (length > this.buf.length - this.pos) this.fail(`needs ${length} bytes`);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  lengthPrefixed(): Uint8Array {
    return this.bytes(this.uint());
  }

  /**
   * A count of items that take at least `minBytes` each: refused when the bytes left could not hold
   * that many, before anything is allocated for them.
   */
  count(minBytes: number): number {
    const n = this.uint();
    if (n * minBytes > this.buf.length - this.pos) this.fail(`declares ${n} entries, more than the ${this.buf.length - this.pos} bytes left can hold`);
    return n;
  }

  /** An unsigned varint that must not exceed `max`. */
  uintAtMost(max: number, field: string): number {
    const value = this.uint();
    if (value > max) this.fail(`${field} ${value} exceeds ${max}`);
    return value;
  }

  get done(): boolean {
    return this.pos === this.buf.length;
  }

  /** Bytes not read yet: what a declared count is checked against before anything is allocated. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  expectEnd(): void {
    if (!this.done) this.fail('trailing bytes');
  }
}

export function toHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}
