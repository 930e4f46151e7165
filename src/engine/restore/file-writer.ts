// Writing restored data into files at given positions. Sparse files get their all-zero blocks skipped,
// so holes come back as holes (the file was created at its full size beforehand).
import fs from 'node:fs';

const BLOCK = 4096;

function isZero(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

export function writeAt(fd: number, data: Uint8Array, position: number, sparse: boolean): void {
  if (!sparse) {
    writeAll(fd, data, 0, data.length, position);
    return;
  }
  // Walk block-aligned (in file offsets) pieces; write runs of non-zero pieces in one call.
  let runStart = -1;
  let i = 0;
  while (i < data.length) {
    const next = Math.min(data.length, i + BLOCK - ((position + i) % BLOCK));
    if (isZero(data, i, next)) {
      if (runStart >= 0) writeAll(fd, data, runStart, i, position + runStart);
      runStart = -1;
    } else if (runStart < 0) {
      runStart = i;
    }
    i = next;
  }
  if (runStart >= 0) writeAll(fd, data, runStart, data.length, position + runStart);
}

function writeAll(fd: number, data: Uint8Array, start: number, end: number, position: number): void {
  while (start < end) {
    const n = fs.writeSync(fd, data, start, end - start, position);
    start += n;
    position += n;
  }
}
