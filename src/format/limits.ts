// Upper bounds of what a reader accepts. Everything read from a repository may have been written by
// someone hostile, so every length, count and decompressed size is checked against these before
// memory is allocated for it. Writers stay well inside them (docs/FORMAT.md, "Limits").

const MiB = 1024 * 1024;

/** Largest chunk a repository's chunker may make (the config's `max` is bounded by it). */
export const MAX_CHUNK_BYTES = 64 * MiB;
/** Largest tree blob (a directory of about ten million entries). */
export const MAX_TREE_BYTES = 1024 * MiB;
/** Largest plaintext of any blob. */
export const MAX_BLOB_BYTES = Math.max(MAX_CHUNK_BYTES, MAX_TREE_BYTES);
/** Packs close at 16 MiB; the blob that crosses that line may be as big as a blob can be, then comes the header. */
export const MAX_PACK_BYTES = 16 * MiB + MAX_BLOB_BYTES + 64 * MiB;
/** A pack header lists at most this many bytes (48 bytes per blob, a blob per 16 bytes of pack at least). */
export const MAX_PACK_HEADER_BYTES = 64 * MiB;
/**
 * Decompressed size of a standalone object relative to its stored size. Index files are mostly random
 * ids, which do not compress (a real one shrinks by less than a third); snapshots are short JSON.
 */
export const INDEX_EXPANSION = 4;
export const MAX_SNAPSHOT_PLAIN_BYTES = 16 * MiB;
export const MAX_INDEX_PLAIN_BYTES = 256 * MiB;
