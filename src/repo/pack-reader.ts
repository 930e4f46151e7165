// Reading a pack's own header (two range reads: trailer, then header), used to adopt packs that no
// index lists and to check packs against the index.
import { openHeader, packKey, parseTrailer, TRAILER_BYTES } from '../format/pack.ts';
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
