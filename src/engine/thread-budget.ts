// How many worker threads of one kind a process starts: one per core, unless their memory would take more
// than a quarter of what the machine (or the container's memory limit) has. A NAS box or a small VM often
// has 4 cores and 1 GiB: four chunk workers would take ~400 MiB beside the main thread, enough for the
// out-of-memory killer to end the backup, where two are a little slower and fit.
import os from 'node:os';

const MIB = 1024 * 1024;

/**
 * What one thread adds to the peak RSS, measured on this machine (bench/PROFILE.md, "Threads within the
 * machine's memory"). A chunk worker: its isolate, the pack it fills and the one it gets back for reuse
 * (~17 MiB each), the read buffer (twice the largest chunk) and zstd's scratch. A restore worker: its
 * isolate and the spans in flight.
 */
export const CHUNK_THREAD_BYTES = 96 * MIB;
export const RESTORE_THREAD_BYTES = 40 * MIB;

/** The share of the memory a process's worker threads may take together. */
const THREADS_SHARE = 1 / 4;

/** The memory this process may use: the machine's, or less when a cgroup limits it. */
export function usableMemory(): number {
  const constrained = process.constrainedMemory();
  const total = os.totalmem();
  // Without a limit, constrainedMemory() is 0 or the largest uint64.
  return constrained > 0 && constrained < total ? constrained : total;
}

/** Threads of `bytesPerThread` each: one per core, within the memory's share, and always at least one. */
export function threadLimit(bytesPerThread: number, cores = os.availableParallelism(), memory = usableMemory()): number {
  const withinMemory = Math.floor((memory * THREADS_SHARE) / bytesPerThread);
  return Math.max(1, Math.min(cores, withinMemory));
}
