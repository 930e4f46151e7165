// Chunk worker threads kept from one backup run to the next in the same process: a worker process of a
// scaled-out backup runs one shard after another, and starting a pool for each (every thread loads the
// chunker, hashing, compression and pack modules) cost about 0.25 CPU-s per thread and shard, more than
// the work of a small shard. A pool is kept only when its run ended with nothing in flight; it then
// forgets that run's index and packs (chunk-protocol 'run-over'), so the next run dedups against its own
// index alone, exactly as a fresh pool would.
import type { BlobIndex } from '../../repo/blob-index.ts';
import { CHUNK_THREAD_BYTES, threadLimit } from '../thread-budget.ts';
import { ChunkPool, type ChunkPoolEvents } from './chunk-pool.ts';
import type { PoolSetup } from './chunk-protocol.ts';

interface Idle {
  readonly pool: ChunkPool;
  readonly setup: PoolSetup;
  readonly count: number;
}

/** Whether a pool started with `a` does exactly what one started with `b` would. */
function sameSetup(a: PoolSetup, b: PoolSetup): boolean {
  const bytes = (x: Uint8Array, y: Uint8Array): boolean => Buffer.from(x).equals(Buffer.from(y));
  return (
    bytes(a.chunkerSeed, b.chunkerSeed) &&
    bytes(a.idKey, b.idKey) &&
    bytes(a.dataKey, b.dataKey) &&
    JSON.stringify(a.chunker) === JSON.stringify(b.chunker) &&
    a.packSize === b.packSize &&
    a.zstdLevel === b.zstdLevel &&
    a.spoolDir === b.spoolDir &&
    // The same pause gate (shared memory), not merely an equal one.
    a.pause === b.pause
  );
}

export class ChunkPools {
  private idle: Idle[] = [];
  /** Pools started so far (the others were kept ones). */
  started = 0;
  private readonly setups = new Map<ChunkPool, Omit<Idle, 'pool'>>();

  /** A pool for a run: a kept one started the same way, else a new one. */
  take(setup: PoolSetup, index: BlobIndex, events: ChunkPoolEvents, count = threadLimit(CHUNK_THREAD_BYTES)): ChunkPool {
    const found = this.idle.findIndex((i) => i.count === count && sameSetup(i.setup, setup));
    if (found >= 0) {
      const [{ pool }] = this.idle.splice(found, 1) as [Idle];
      pool.startRun(index, events);
      this.setups.set(pool, { setup, count });
      return pool;
    }
    const pool = new ChunkPool(setup, index, events, count);
    this.started++;
    this.setups.set(pool, { setup, count });
    return pool;
  }

  /** Gives a pool back as its run ends: kept if it is clean (flushed, no worker died), else closed. */
  async release(pool: ChunkPool): Promise<void> {
    const taken = this.setups.get(pool);
    this.setups.delete(pool);
    // One idle pool of each kind is enough: a process runs its shards one after another, or a few at once.
    if (!taken || !pool.reusable || this.idle.some((i) => i.count === taken.count && sameSetup(i.setup, taken.setup))) return pool.close();
    pool.endRun();
    this.idle.push({ pool, ...taken });
  }

  /** Ends the kept pools' threads. */
  async close(): Promise<void> {
    const idle = this.idle;
    this.idle = [];
    await Promise.all(idle.map((i) => i.pool.close()));
  }
}
