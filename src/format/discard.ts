// Freeing a buffer's memory now rather than when its thread next collects garbage: V8 lets dead buffers
// pile up as "external memory" (tens of MiB per thread between collections), and glibc keeps what they
// took in the thread's arena, so a thread that makes a buffer per blob peaks that much higher
// (bench/PROFILE.md, "Restore memory" and "Backup memory: dead buffers freed at once").

/**
 * Frees a buffer the caller made and no longer needs. Only a buffer at the start of its memory, and never
 * Node's shared pool (slabs of Buffer.poolSize bytes, handed out in slices under half a slab): a view
 * into another buffer, or a small slice of the pool, is left to the collector. The caller must hold the
 * only reference: the memory is detached, so any other view of it reads as empty afterwards.
 */
export function discard(buffer: Uint8Array): void {
  const memory = buffer.buffer;
  if (!(memory instanceof ArrayBuffer) || buffer.byteOffset !== 0) return;
  const poolSlab = memory.byteLength === Buffer.poolSize && buffer.byteLength < memory.byteLength;
  if (!poolSlab) memory.transfer(0);
}
