// Reading a pack's own header (two range reads: trailer, then header), used to adopt packs that no
// index lists and to check packs against the index.
import type { KeyObject } from 'node:crypto';
import { openHeader, packKey, parseTrailer, TRAILER_BYTES, type PackEntry } from '../format/pack.ts';
import type { IndexedPack } from '../format/index-file.ts';
import { FormatError } from '../format/bytes.ts';
import { idOf, type Store } from '../store/store.ts';

export async function readPackHeader(store: Store, name: string, size: number, dataKey: Buffer): Promise<IndexedPack> {
  if (size < TRAILER_BYTES) throw new FormatError(`pack ${name} is truncated (${size} bytes)`);
  const trailer = parseTrailer(await store.get(name, { offset: size - TRAILER_BYTES, length: TRAILER_BYTES }), `pack ${name}`);
  const headerOffset = size - TRAILER_BYTES - trailer.headerLength;
  if (headerOffset < 0) throw new FormatError(`pack ${name} is truncated`);
  const sealedHeader = await store.get(name, { offset: headerOffset, length: trailer.headerLength });
  const entries = openHeader(packKey(dataKey, trailer.salt), sealedHeader, headerOffset, `pack ${name}`);
  return { id: Buffer.from(idOf(name), 'hex'), salt: trailer.salt, entries };
}

/** Parses the trailer and header of a whole pack held in memory (prune's repack reads packs whole). */
export function parsePack(bytes: Buffer, name: string, dataKey: Buffer): { key: KeyObject; entries: PackEntry[] } {
  if (bytes.length < TRAILER_BYTES) throw new FormatError(`pack ${name} is truncated`);
  const trailer = parseTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), `pack ${name}`);
  const headerOffset = bytes.length - TRAILER_BYTES - trailer.headerLength;
  if (headerOffset < 0) throw new FormatError(`pack ${name} is truncated`);
  const key = packKey(dataKey, trailer.salt);
  const entries = openHeader(key, bytes.subarray(headerOffset, headerOffset + trailer.headerLength), headerOffset, `pack ${name}`);
  return { key, entries };
}
