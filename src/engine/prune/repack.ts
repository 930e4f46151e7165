// Moving needed blobs out of mostly unused packs: each blob is decrypted, checked against its id, and
// sealed into a new pack with a new key and offset (data and tree blobs in separate packs, as backups
// write them). New packs are built once and handed to `onSealed`, which uploads them to every replica.
import { FormatError, toHex } from '../../format/bytes.ts';
import { decompressPayload, type Framed } from '../../format/compression.ts';
import { blobId, ID_BYTES } from '../../format/crypto.ts';
import { discard } from '../../format/discard.ts';
import { BlobType, openBlob, packKey, PackWriter, type SealedPack } from '../../format/pack.ts';
import type { Repository } from '../../repo/repository.ts';
import { packName } from '../../store/store.ts';
import { readSpans, type SpanLimits } from '../read-spans.ts';

/** Uploads that may run while the next pack is built. */
const UPLOADS_IN_FLIGHT = 2;

export class PackBuilder {
  private readonly repo: Repository;
  private readonly packSize: number;
  private readonly onSealed: (pack: SealedPack) => Promise<void>;
  private readonly writers = new Map<BlobType, PackWriter>();
  private readonly inFlight: Promise<void>[] = [];
  /** Packs sealed so far, and their bytes. */
  packs = 0;
  bytes = 0;

  constructor(repo: Repository, packSize: number, onSealed: (pack: SealedPack) => Promise<void>) {
    this.repo = repo;
    this.packSize = packSize;
    this.onSealed = onSealed;
  }

  private writer(type: BlobType): PackWriter {
    let w = this.writers.get(type);
    if (!w) this.writers.set(type, (w = new PackWriter(this.repo.keys.dataKey, { capacity: this.packSize + 1024 * 1024 })));
    return w;
  }

  async add(type: BlobType, id: Buffer, framed: Framed, rawLength: number): Promise<void> {
    const w = this.writer(type);
    w.add(type, id, framed, rawLength);
    if (w.size >= this.packSize) await this.seal(type);
  }

  private async seal(type: BlobType): Promise<void> {
    const w = this.writers.get(type);
    if (!w || w.count === 0) return;
    this.writers.delete(type);
    const sealed = w.seal();
    this.packs++;
    this.bytes += sealed.bytes.length;
    const upload = this.onSealed(sealed);
    upload.catch(() => {});
    this.inFlight.push(upload);
    if (this.inFlight.length >= UPLOADS_IN_FLIGHT) await this.inFlight.shift();
  }

  /** Seals what is open and waits for every upload. */
  async finish(): Promise<void> {
    await this.seal(BlobType.Data);
    await this.seal(BlobType.Tree);
    while (this.inFlight.length > 0) await this.inFlight.shift();
  }
}

/** A pack whose needed blobs could not all be read back intact: it is kept as it is. */
export class DamagedPackError extends Error {
  override name = 'DamagedPackError';
}

/** Kept blobs within 1 MiB of each other are read together, at most 4 MiB at once: a repacked pack is never held whole. */
const SPANS: SpanLimits = { maxGap: 1024 * 1024, maxSpan: 4 * 1024 * 1024 };

/**
 * Copies blob entries `blobs` of pack number `p` of the index into `builder`, after checking every one
 * of them (from any replica holding an intact copy of its range). The index says where each blob is, so
 * only the ranges holding kept blobs are read, a few MiB at a time, and the pack's header is not decoded
 * (an object per blob, for thousands of blobs per pack of which a repack may keep a handful). Each blob
 * is authenticated and checked against its id, so the bytes between kept blobs need not be read: the
 * pack goes once its blobs are safe elsewhere.
 */
export async function repackPack(repo: Repository, p: number, blobs: ArrayLike<number>, builder: PackBuilder): Promise<void> {
  const index = repo.index;
  const name = packName(toHex(index.packId(p)));
  const key = packKey(repo.keys.dataKey, index.packSalt(p));
  const sorted = Int32Array.from(blobs).sort((a, b) => index.blobOffset(a) - index.blobOffset(b));
  // Every blob is checked before any is added: a damaged pack is kept whole, none of it copied.
  // The plaintexts are only hashed, so they all go to one buffer instead of one each.
  const scratch = Buffer.allocUnsafeSlow(sorted.reduce((max, n) => Math.max(max, index.blobRawLength(n)), 0));
  const copies: { type: BlobType; id: Buffer; framed: Buffer; rawLength: number }[] = [];
  try {
    for (const { items: span, offset: base, length } of readSpans(sorted, (n) => ({ offset: index.blobOffset(n), length: index.blobLength(n) }), SPANS)) {
      const decoded = await repo.read(
        name,
        (bytes) => {
          // The ids are copied (the index's id page must not be held by the new pack's entries) into one
          // buffer of their own: a 32-byte copy from Node's pool would keep its 64 KiB slab, and the
          // decompressed blobs that share it, alive until the new pack is sealed.
          const ids = Buffer.allocUnsafeSlow(span.length * ID_BYTES);
          const decoded = Array.from(span, (n, i) => {
            const type = index.blobType(n);
            const blob = ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
            blob.set(index.blobId(n));
            const offset = index.blobOffset(n);
            const rawLength = index.blobRawLength(n);
            const what = `blob ${blob.toString('hex').slice(0, 16)} in ${name}`;
            const framed = openBlob(key, offset, type, blob, bytes.subarray(offset - base, offset - base + index.blobLength(n)), what);
            const raw = decompressPayload(framed, rawLength, what, scratch);
            if (!blobId(repo.idKey, raw).equals(blob)) throw new FormatError(`${what} does not match its id (damaged)`);
            return { type, id: blob, framed, rawLength };
          });
          // The range is read for this alone (as the restore's spans are): freed now, not at the next GC.
          discard(bytes);
          return decoded;
        },
        { offset: base, length },
      );
      for (const c of decoded) copies.push(c);
    }
  } catch (err) {
    throw new DamagedPackError(`${name} cannot be repacked: ${(err as Error).message}`, { cause: err });
  }
  for (const c of copies) {
    await builder.add(c.type, c.id, { flag: c.framed[0]!, body: c.framed.subarray(1) }, c.rawLength);
    discard(c.framed);
  }
}
