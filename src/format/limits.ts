// Upper bounds of what a reader accepts. Everything read from a repository may have been written by
// someone hostile, so every length, count and decompressed size is checked against these before
// memory is allocated for it. Writers stay inside them (docs/FORMAT.md, "Limits").

const KiB = 1024;
const MiB = 1024 * KiB;

/** Largest chunk a repository's chunker may make (the config's `max` is bounded by it). */
export const MAX_CHUNK_BYTES = 64 * MiB;
/** Largest tree blob: a directory of some two and a half million entries. */
export const MAX_TREE_BYTES = 256 * MiB;
/** Most entries of one directory: each takes a few hundred bytes of memory once decoded. */
export const MAX_TREE_ENTRIES = 4_000_000;
/** What encryption adds to a blob's framed plaintext: the flag byte and the AES-GCM tag. */
export const BLOB_OVERHEAD = 1 + 16;
/** Largest pack header (48 bytes at most per blob). */
export const MAX_PACK_HEADER_BYTES = 64 * MiB;
/** Packs close at 16 MiB; the blob that crosses that line may be as big as a blob can be, then comes the header. */
export const MAX_PACK_BYTES = 16 * MiB + MAX_TREE_BYTES + BLOB_OVERHEAD + MAX_PACK_HEADER_BYTES + KiB;
/**
 * Plaintext of an index file relative to its stored size: index files are mostly random ids, which do
 * not compress (a real one shrinks by less than a third), so more than four times is a bomb.
 */
export function maxIndexPlainBytes(storedBytes: number): number {
  return Math.min(256 * MiB, 4 * storedBytes + 64 * KiB);
}
export const MAX_SNAPSHOT_PLAIN_BYTES = 16 * MiB;
/** Deletion records are lists of 32-byte ids (merged ones included): 256 MiB is eight million of them. */
export const MAX_DELETION_RECORD_BYTES = 256 * MiB;
/** Writer markers are a few hundred bytes of JSON. */
export const MAX_WRITER_MARKER_BYTES = 64 * 1024;

/** Largest plaintext of a blob of `type` (0 data, 1 tree). */
export function maxBlobBytes(type: number): number {
  return type === 0 ? MAX_CHUNK_BYTES : MAX_TREE_BYTES;
}
