// Memory cost of the in-memory blob index per blob, with synthetic random ids added pack by pack the way
// index files are loaded (target: ≤ 64 bytes per blob at 10 million blobs). Run with --expose-gc so the
// RSS figures are taken after collection: node --expose-gc bench/index-memory.ts [--count N] [--json]
import { randomBytes, randomFillSync } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ID_BYTES, SALT_BYTES } from '../src/format/crypto.ts';
import { BlobType, type PackEntry } from '../src/format/pack.ts';
import { BlobIndex } from '../src/repo/blob-index.ts';

export interface IndexMemoryResult {
  readonly count: number;
  readonly blobsPerPack: number;
  /** BlobIndex.memoryBytes() / blobs. */
  readonly bytesPerBlob: number;
  /** Growth of the process RSS / blobs: includes allocator slack the index's own figure cannot see. */
  readonly rssBytesPerBlob: number;
  readonly seconds: number;
}

function settledRss(): number {
  globalThis.gc?.();
  return process.memoryUsage().rss;
}

function measureIndex(count: number, blobsPerPack: number): IndexMemoryResult {
  const started = process.hrtime.bigint();
  const rssBefore = settledRss();
  const index = new BlobIndex();
  const ids = Buffer.allocUnsafe(blobsPerPack * ID_BYTES);
  while (index.blobCount < count) {
    const n = Math.min(blobsPerPack, count - index.blobCount);
    randomFillSync(ids);
    const entries: PackEntry[] = [];
    for (let i = 0; i < n; i++) {
      const id = ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
      entries.push({ type: BlobType.Data, id, offset: i * 65536, length: 65536, rawLength: 131072 });
    }
    index.addPack({ id: randomBytes(ID_BYTES), salt: randomBytes(SALT_BYTES), entries });
  }
  const rssAfter = settledRss();
  return {
    count: index.blobCount,
    blobsPerPack,
    bytesPerBlob: index.memoryBytes() / index.blobCount,
    rssBytesPerBlob: (rssAfter - rssBefore) / index.blobCount,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '10000000' },
      // Packs of ~16 MiB hold 16 blobs of large files and hundreds of small ones; 100 is in between.
      'blobs-per-pack': { type: 'string', default: '100' },
      json: { type: 'boolean', default: false },
    },
  });
  if (globalThis.gc === undefined) process.stderr.write('warning: run with --expose-gc for stable RSS figures\n');
  const r = measureIndex(Number(values.count), Number(values['blobs-per-pack']));
  if (values.json) console.log(JSON.stringify(r));
  else
    console.log(
      `${r.count.toLocaleString('en-US')} blobs (${r.blobsPerPack} per pack) in ${r.seconds.toFixed(1)} s: ` +
        `index ${r.bytesPerBlob.toFixed(1)} B/blob, RSS growth ${r.rssBytesPerBlob.toFixed(1)} B/blob (target ≤ 64)`,
    );
}
