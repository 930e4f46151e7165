// Chunk worker: reads files, cuts them with FastCDC, names chunks with HMAC-SHA256, skips chunks the
// repository already has, compresses and encrypts the rest into its own data packs. Each worker seals
// its own packs (each pack has its own key), so workers never coordinate nonces.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Chunker } from '../../format/chunker.ts';
import { compress } from '../../format/compression.ts';
import { ID_BYTES, blobId, secretKey } from '../../format/crypto.ts';
import { BlobType, PackWriter } from '../../format/pack.ts';
import { NodeType } from '../../format/tree.ts';
import { IdSetView } from '../../repo/id-table.ts';
import { looksSparse, metaOf } from '../fs-meta.ts';
import type { FileResult, FromWorker, ToWorker, WorkerSetup } from './chunk-protocol.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const chunker = new Chunker(setup.chunkerSeed, setup.chunker);
const idKey = secretKey(setup.idKey);
const dataKey = Buffer.from(setup.dataKey);
const known = new IdSetView(setup.known);
/** Room for two maximal chunks: a refill moves at most one chunk's worth of bytes. */
const buffer = Buffer.allocUnsafe(2 * setup.chunker.max);
const READ_REPORT_BYTES = 16 * 1024 * 1024;
const MAX_READ_ATTEMPTS = 3;

let packer = new PackWriter(dataKey);
/** Ids in the open pack and in the last sealed one (the main thread may not have indexed it yet). */
let openIds = new Set<string>();
let sealedIds = new Set<string>();
let unreportedRead = 0;
/** Highest priority of the files with chunks in the open pack. */
let packPriority = -Infinity;

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function sealPack(): void {
  if (packer.count === 0) return;
  const sealed = packer.seal();
  // The pack's bytes are the whole of their own buffer (see PackWriter.seal), so it moves without a copy.
  const bytes = sealed.bytes.buffer as ArrayBuffer;
  post({ type: 'pack', id: sealed.id, salt: sealed.salt, bytes, entries: sealed.entries, priority: Number.isFinite(packPriority) ? packPriority : 0 }, [bytes]);
  packer = new PackWriter(dataKey);
  packPriority = -Infinity;
  sealedIds = openIds;
  openIds = new Set();
}

function storeChunk(chunk: Buffer): Buffer {
  const id = blobId(idKey, chunk);
  const key = id.toString('base64');
  if (!known.has(id) && !openIds.has(key) && !sealedIds.has(key)) {
    packer.add(BlobType.Data, id, compress(chunk, setup.zstdLevel), chunk.length);
    openIds.add(key);
    if (packer.size >= setup.packSize) sealPack();
  }
  return id;
}

function noteRead(bytes: number): void {
  unreportedRead += bytes;
  if (unreportedRead >= READ_REPORT_BYTES) reportRead();
}

function reportRead(): void {
  if (unreportedRead > 0) post({ type: 'read', bytes: unreportedRead });
  unreportedRead = 0;
}

/** Reads the whole file from offset 0 and returns its chunk ids. */
function chunkFile(fd: number): { ids: Buffer[]; bytes: number } {
  const max = setup.chunker.max;
  const ids: Buffer[] = [];
  let start = 0;
  let end = 0;
  let position = 0;
  let eof = false;
  for (;;) {
    if (!eof && end - start < max) {
      buffer.copyWithin(0, start, end);
      end -= start;
      start = 0;
      while (end < buffer.length && !eof) {
        const n = fs.readSync(fd, buffer, end, buffer.length - end, position);
        if (n === 0) eof = true;
        position += n;
        end += n;
        noteRead(n);
      }
    }
    if (start === end) return { ids, bytes: position };
    const cut = chunker.nextCut(buffer, start, eof ? end : start + max);
    ids.push(storeChunk(buffer.subarray(start, cut)));
    start = cut;
  }
}

function openForReading(path: Buffer): number {
  const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
  try {
    // O_NOATIME keeps the backup from touching access times where we are allowed to ask for it.
    return fs.openSync(path, flags | fs.constants.O_NOATIME);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return fs.openSync(path, flags);
  }
}

function sameVersion(a: fs.BigIntStats, b: fs.BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function backupFile(path: Buffer): FileResult {
  let fd: number;
  try {
    fd = openForReading(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, code: e.code ?? 'EIO', message: e.message };
  }
  try {
    for (let attempt = 1; ; attempt++) {
      const before = fs.fstatSync(fd, { bigint: true });
      if (!before.isFile()) return { ok: false, code: 'ENOTREG', message: 'is no longer a regular file' };
      const { ids, bytes } = chunkFile(fd);
      const after = fs.fstatSync(fd, { bigint: true });
      const stable = sameVersion(before, after) && BigInt(bytes) === after.size;
      if (stable || attempt === MAX_READ_ATTEMPTS) {
        const content = Buffer.allocUnsafe(ids.length * ID_BYTES);
        ids.forEach((id, i) => id.copy(content, i * ID_BYTES));
        const meta = { ...metaOf(after, NodeType.File), size: bytes };
        return { ok: true, content, meta, sparse: looksSparse(after), unstable: !stable };
      }
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, code: e.code ?? 'EIO', message: e.message };
  } finally {
    fs.closeSync(fd);
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'batch': {
      packPriority = Math.max(packPriority, message.priority);
      const results = message.paths.map((p) => backupFile(Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
      reportRead();
      post({ type: 'batch-done', batch: message.batch, results });
      break;
    }
    case 'flush':
      sealPack();
      post({ type: 'flushed' });
      break;
    case 'known':
      known.update(message.share);
      break;
  }
});
