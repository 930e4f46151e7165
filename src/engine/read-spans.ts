// Which parts of a pack to read together. A pack is read by ranges (restore, prune's repack) of the blobs
// wanted from it; neighbours are read in one request, the gap between them included, as long as the
// gap is small (reading it costs less than another request) and the range stays within a size the
// caller can hold in memory.

export interface SpanLimits {
  /** Blobs further apart than this are read separately. */
  readonly maxGap: number;
  /** A range is at most this long (unless one blob alone is longer). */
  readonly maxSpan: number;
}

/** One read of a pack: its blobs, in offset order. */
export interface Span<T> {
  readonly items: T[];
  readonly offset: number;
  readonly length: number;
}

/** Groups `items` (sorted by offset; `where` gives each one's bytes in the pack) into ranges worth one read each. */
export function readSpans<T>(items: Iterable<T>, where: (item: T) => { readonly offset: number; readonly length: number }, limits: SpanLimits): Span<T>[] {
  const result: Span<T>[] = [];
  let current: { items: T[]; offset: number; end: number } | undefined;
  for (const item of items) {
    const { offset, length } = where(item);
    const end = offset + length;
    if (current && offset - current.end <= limits.maxGap && end - current.offset <= limits.maxSpan) {
      current.items.push(item);
      current.end = Math.max(current.end, end);
      continue;
    }
    if (current) result.push({ items: current.items, offset: current.offset, length: current.end - current.offset });
    current = { items: [item], offset, end };
  }
  if (current) result.push({ items: current.items, offset: current.offset, length: current.end - current.offset });
  return result;
}
