// Growable bit sets and id stacks in typed arrays: prune keeps one bit per blob entry of the index
// (1.25 MB for 10 million blobs) instead of a JS object or string per blob.
import { ID_BYTES } from '../../format/crypto.ts';

export class BitSet {
  private bits = new Uint8Array(1024);

  private ensure(n: number): void {
    if (n >> 3 < this.bits.length) return;
    let size = this.bits.length * 2;
    while (size <= n >> 3) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.bits);
    this.bits = bigger;
  }

  /** Sets bit n; returns whether it was clear. */
  set(n: number): boolean {
    this.ensure(n);
    const mask = 1 << (n & 7);
    if (this.bits[n >> 3]! & mask) return false;
    this.bits[n >> 3]! |= mask;
    return true;
  }

  has(n: number): boolean {
    return n >> 3 < this.bits.length && (this.bits[n >> 3]! & (1 << (n & 7))) !== 0;
  }
}

/** A stack of 32-byte ids in one growable buffer (trees still to walk). */
export class IdStack {
  private buf = new Uint8Array(ID_BYTES * 256);
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(id: Uint8Array): void {
    if ((this.count + 1) * ID_BYTES > this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf.set(id.subarray(0, ID_BYTES), this.count * ID_BYTES);
    this.count++;
  }

  /** The top id, copied (the stack's buffer is reused). */
  pop(): Buffer | undefined {
    if (this.count === 0) return undefined;
    this.count--;
    return Buffer.from(this.buf.subarray(this.count * ID_BYTES, (this.count + 1) * ID_BYTES));
  }
}
