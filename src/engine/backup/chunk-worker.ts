// Chunk worker: reads files, cuts them with FastCDC, names chunks with HMAC-SHA256, skips chunks the
// repository already has, compresses and encrypts the rest into its own data packs, each written to a
// file of the spool directory as it fills. Each worker seals its own packs (each pack has its own key),
// so workers never coordinate nonces.
import fs from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { Chunker } from '../../format/chunker.ts';
import { compress } from '../../format/compression.ts';
import { ID_BYTES, blobId, secretKey } from '../../format/crypto.ts';
import { discard } from '../../format/discard.ts';
import { BlobType } from '../../format/pack.ts';
import { NodeType } from '../../format/tree.ts';
import { IdSetView } from '../../repo/id-table.ts';
import { looksSparse, metaOf } from '../fs-meta.ts';
import { SpoolFile } from '../spool.ts';
import { EXPECTED_FIELDS, FileFlag, type BatchResults, type FromWorker, type SpoolFileOffer, type ToWorker, type WorkerSetup } from './chunk-protocol.ts';
import { PackFileWriter, SpoolWriteError, STAGING_BYTES } from './pack-file.ts';
import type { NodeMeta } from '../../format/tree.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const chunker = new Chunker(setup.chunkerSeed, setup.chunker);
const idKey = secretKey(setup.idKey);
const dataKey = Buffer.from(setup.dataKey);
/** The run's index (blobs stored already); none between two runs of a kept pool. */
let known: IdSetView | undefined = new IdSetView(setup.known);
/** Room for two maximal chunks: a refill moves at most one chunk's worth of bytes. */
const buffer = Buffer.allocUnsafe(2 * setup.chunker.max);
const READ_REPORT_BYTES = 16 * 1024 * 1024;
const MAX_READ_ATTEMPTS = 3;

/** Gathers the open pack's small writes (PackFileWriter). */
const staging = Buffer.allocUnsafe(STAGING_BYTES);
/** The open pack, begun with its first blob. */
let packer: PackFileWriter | undefined;
let spoolFilesTaken = 0;

/** An empty spool file from the main thread, waiting for one if none has come yet. */
function takeSpoolFile(): SpoolFile {
  for (;;) {
    const offer = receiveMessageOnPort(setup.spoolFiles)?.message as SpoolFileOffer | undefined;
    if (offer) {
      spoolFilesTaken++;
      if ('error' in offer) throw new SpoolWriteError(offer.error);
      return new SpoolFile(offer.fd, undefined);
    }
    Atomics.wait(setup.spoolFilesPosted, 0, spoolFilesTaken, 1000);
  }
}
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
  if (!packer) return;
  const sealed = packer.seal();
  packer = undefined;
  post({ type: 'pack', id: sealed.id, salt: sealed.salt, fd: sealed.file.fd, length: sealed.file.size, entries: sealed.entries, priority: Number.isFinite(packPriority) ? packPriority : 0 });
  packPriority = -Infinity;
  sealedIds = openIds;
  openIds = new Set();
  waitWhileHeld();
}

/**
 * A paused run, or one whose destinations are all too far behind: the pack in hand is sealed; the next
 * one starts when both gates are open (or the run stops us).
 */
function waitWhileHeld(): void {
  const closed = (gate: Int32Array | undefined): gate is Int32Array => gate !== undefined && Atomics.load(gate, 0) === 1;
  for (let gate = [setup.pause, setup.held].find(closed); gate; gate = [setup.pause, setup.held].find(closed)) Atomics.wait(gate, 0, 1, 1000);
}

function storeChunk(chunk: Buffer): Buffer {
  const id = blobId(idKey, chunk);
  const key = id.toString('base64');
  if (!known?.has(id) && !openIds.has(key) && !sealedIds.has(key)) {
    const framed = compress(chunk, setup.zstdLevel);
    packer ??= new PackFileWriter(dataKey, takeSpoolFile(), setup.spoolDir, staging);
    packer.add(BlobType.Data, id, framed, chunk.length);
    // zstd's output is dead once encrypted into the pack (a raw body is the read buffer itself: kept).
    if (framed.body !== chunk) discard(framed.body);
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

/**
 * Reads the whole file from offset 0 and returns its chunk ids. A short read that ends exactly at the
 * expected size is taken as the end of the file (no extra read() for every small file); if the file
 * grew meanwhile, the fstat after reading says so.
 */
function chunkFile(fd: number, expectedSize: number, ids: Buffer[]): number {
  const max = setup.chunker.max;
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
        const want = buffer.length - end;
        const n = fs.readSync(fd, buffer, end, want, position);
        position += n;
        end += n;
        eof = n === 0 || (n < want && position === expectedSize);
        noteRead(n);
      }
    }
    if (start === end) return position;
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

interface Version {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function sameVersion(a: Version, b: Version): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** Reads one file into `out`; returns its flags. */
function backupFile(path: Buffer, scanned: Version, file: number, out: BatchOut): void {
  let fd: number;
  try {
    fd = openForReading(path);
  } catch (err) {
    out.fail(file, err as NodeJS.ErrnoException);
    return;
  }
  try {
    let before: Version = scanned;
    for (let attempt = 1; ; attempt++) {
      const ids: Buffer[] = [];
      const bytes = chunkFile(fd, Number(before.size), ids);
      const after = fs.fstatSync(fd, { bigint: true });
      if (!after.isFile()) {
        out.fail(file, { code: 'ENOTREG', message: 'is no longer a regular file' });
        return;
      }
      const stable = sameVersion(before, after) && BigInt(bytes) === after.size;
      if (stable || attempt === MAX_READ_ATTEMPTS) {
        const changed = attempt > 1 || !stable;
        const meta = changed ? { ...metaOf(after, NodeType.File), size: bytes } : undefined;
        out.done(file, ids, bytes, looksSparse(after), !stable, meta);
        return;
      }
      before = after;
    }
  } catch (err) {
    // The spool, not the source file, failed: the run cannot go on (the worker's error ends it).
    if (err instanceof SpoolWriteError) throw err;
    out.fail(file, err as NodeJS.ErrnoException);
  } finally {
    fs.closeSync(fd);
  }
}

/** Collects a batch's results into the arrays of BatchResults. */
class BatchOut {
  readonly flags: Uint8Array;
  readonly sizes: Float64Array;
  readonly chunkCounts: Uint32Array;
  private readonly ids: Buffer[] = [];
  readonly metas: BatchResults['metas'] = [];
  readonly errors: BatchResults['errors'] = [];

  constructor(files: number) {
    this.flags = new Uint8Array(files);
    this.sizes = new Float64Array(files);
    this.chunkCounts = new Uint32Array(files);
  }

  done(file: number, ids: Buffer[], size: number, sparse: boolean, unstable: boolean, meta: NodeMeta | undefined): void {
    this.flags[file] = (sparse ? FileFlag.sparse : 0) | (unstable ? FileFlag.unstable : 0) | (meta ? FileFlag.changed : 0);
    this.sizes[file] = size;
    this.chunkCounts[file] = ids.length;
    this.ids.push(...ids);
    if (meta) this.metas.push({ file, meta });
  }

  fail(file: number, err: { code?: string; message: string }): void {
    this.flags[file] = FileFlag.failed;
    this.errors.push({ file, code: err.code ?? 'EIO', message: err.message });
  }

  results(): { results: BatchResults; transfer: ArrayBuffer[] } {
    const ids = new Uint8Array(new ArrayBuffer(this.ids.length * ID_BYTES));
    this.ids.forEach((id, i) => ids.set(id, i * ID_BYTES));
    return {
      results: { flags: this.flags, sizes: this.sizes, chunkCounts: this.chunkCounts, ids, metas: this.metas, errors: this.errors },
      transfer: [ids.buffer as ArrayBuffer, this.flags.buffer as ArrayBuffer, this.sizes.buffer as ArrayBuffer, this.chunkCounts.buffer as ArrayBuffer],
    };
  }
}

/** A streamed source being chunked: its bytes wait in `buffer` until a whole maximal chunk is there. */
interface StreamState {
  readonly buffer: Buffer;
  start: number;
  end: number;
  size: number;
  readonly ids: Buffer[];
}

const streams = new Map<number, StreamState>();

function streamData(state: StreamState, bytes: Uint8Array): void {
  const max = setup.chunker.max;
  let offset = 0;
  while (offset < bytes.length) {
    if (state.end === state.buffer.length) {
      state.buffer.copyWithin(0, state.start, state.end);
      state.end -= state.start;
      state.start = 0;
    }
    const n = Math.min(bytes.length - offset, state.buffer.length - state.end);
    state.buffer.set(bytes.subarray(offset, offset + n), state.end);
    state.end += n;
    offset += n;
    state.size += n;
    // Cut only with a maximal chunk's worth in hand, as chunkFile does before the end of a file.
    while (state.end - state.start >= max) {
      const cut = chunker.nextCut(state.buffer, state.start, state.start + max);
      state.ids.push(storeChunk(state.buffer.subarray(state.start, cut)));
      state.start = cut;
    }
  }
}

function streamEnd(state: StreamState): void {
  while (state.start < state.end) {
    const cut = chunker.nextCut(state.buffer, state.start, state.end);
    state.ids.push(storeChunk(state.buffer.subarray(state.start, cut)));
    state.start = cut;
  }
}

function onStream(message: Extract<ToWorker, { type: 'stream' }>): void {
  if (message.abort) {
    streams.delete(message.stream);
    return;
  }
  let state = streams.get(message.stream);
  if (!state) {
    state = { buffer: Buffer.allocUnsafe(2 * setup.chunker.max), start: 0, end: 0, size: 0, ids: [] };
    streams.set(message.stream, state);
  }
  packPriority = Math.max(packPriority, message.priority);
  if (message.bytes) {
    streamData(state, message.bytes);
    post({ type: 'stream-ack', stream: message.stream, bytes: message.bytes.length });
  }
  if (message.end) {
    streamEnd(state);
    streams.delete(message.stream);
    const ids = new Uint8Array(new ArrayBuffer(state.ids.length * ID_BYTES));
    state.ids.forEach((id, i) => ids.set(id, i * ID_BYTES));
    post({ type: 'stream-done', stream: message.stream, ids, size: state.size }, [ids.buffer as ArrayBuffer]);
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'batch': {
      packPriority = Math.max(packPriority, message.priority);
      const out = new BatchOut(message.paths.length);
      message.paths.forEach((p, i) => {
        const e = message.expected;
        const k = i * EXPECTED_FIELDS;
        backupFile(Buffer.from(p.buffer, p.byteOffset, p.byteLength), { size: e[k]!, mtimeNs: e[k + 1]!, ctimeNs: e[k + 2]! }, i, out);
      });
      reportRead();
      const { results, transfer } = out.results();
      post({ type: 'batch-done', batch: message.batch, results }, transfer);
      break;
    }
    case 'flush':
      sealPack();
      post({ type: 'flushed' });
      break;
    case 'known':
      if (known) known.update(message.share);
      else known = new IdSetView(message.share);
      break;
    case 'run-over':
      // Sealed for a run that may not have stored them (it failed after its flush): never a reason to skip a chunk in the next.
      known = undefined;
      openIds = new Set();
      sealedIds = new Set();
      break;
    case 'stream':
      onStream(message);
      break;

  }
});
