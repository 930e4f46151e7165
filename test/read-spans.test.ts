// Grouping the blobs wanted from a pack into range reads (src/engine/read-spans.ts; restore and prune's repack).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readSpans } from '../src/engine/read-spans.ts';

const limits = { maxGap: 100, maxSpan: 1000 };
const at = (offset: number, length: number) => ({ offset, length });
const spans = (blobs: { offset: number; length: number }[]) => readSpans(blobs, (b) => b, limits).map((s) => [s.offset, s.length, s.items.length]);

test('neighbours are read together, the small gaps between them included', () => {
  assert.deepEqual(spans([at(0, 10), at(10, 10), at(120, 30)]), [[0, 150, 3]]);
});

test('a gap over the limit starts a new read', () => {
  assert.deepEqual(spans([at(0, 10), at(111, 10)]), [[0, 10, 1], [111, 10, 1]]);
});

test('a read stops before it would pass the size limit; a blob bigger than the limit is read alone', () => {
  assert.deepEqual(spans([at(0, 600), at(600, 400), at(1000, 1)]), [[0, 1000, 2], [1000, 1, 1]]);
  assert.deepEqual(spans([at(0, 10), at(10, 5000), at(5010, 10)]), [[0, 10, 1], [10, 5000, 1], [5010, 10, 1]]);
});

test('nothing wanted, nothing read', () => {
  assert.deepEqual(spans([]), []);
});
