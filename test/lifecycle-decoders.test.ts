// Fuzzing the decoders that deletion and concurrency add (deletion records, writer markers): random and
// mutated input only ever gives a FormatError, never a crash, a hang or an allocation the input's size
// does not justify (a declared count is checked against the bytes left first).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { ByteWriter, FormatError } from '../src/format/bytes.ts';
import { decodeDeletionRecord, encodeDeletionRecord } from '../src/format/deletion-record.ts';
import { decodeWriterMarker, encodeWriterMarker } from '../src/format/writer-marker.ts';

const record = {
  timeMs: 1_700_000_000_000,
  host: 'host',
  snapshots: [crypto.randomBytes(32)],
  packs: Array.from({ length: 5 }, () => crypto.randomBytes(32)),
  indexes: [crypto.randomBytes(32)],
  writers: [crypto.randomBytes(16), crypto.randomBytes(16)],
};
const marker = {
  version: 1 as const,
  writer: crypto.randomBytes(16).toString('hex'),
  sequence: 3,
  time: new Date().toISOString(),
  started: new Date().toISOString(),
  host: 'host',
  scope: 'host|boot|pid:[1]',
  pid: 42,
  command: 'backup',
  exclusive: false,
};

/** Only FormatErrors, whatever the input. */
function onlyFormatErrors(decode: () => unknown): void {
  try {
    decode();
  } catch (err) {
    assert.ok(err instanceof FormatError, `${(err as Error).name}: ${(err as Error).message}`);
  }
}

function mutate(bytes: Buffer, rounds: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < rounds; i++) {
    const at = crypto.randomInt(out.length);
    switch (crypto.randomInt(3)) {
      case 0:
        out[at] = crypto.randomInt(256);
        break;
      case 1:
        out[at]! ^= 1 << crypto.randomInt(8);
        break;
      default:
        return out.subarray(0, at);
    }
  }
  return out;
}

test('deletion records: round trip, and random or mutated bytes give FormatErrors only', () => {
  const good = encodeDeletionRecord(record);
  assert.deepEqual(decodeDeletionRecord(good, 'r'), record);
  for (let i = 0; i < 3000; i++) {
    onlyFormatErrors(() => decodeDeletionRecord(crypto.randomBytes(crypto.randomInt(200)), 'r'));
    onlyFormatErrors(() => decodeDeletionRecord(mutate(good, 1 + crypto.randomInt(4)), 'r'));
  }
});

test('a deletion record that declares more ids than its bytes hold is refused before anything is allocated', () => {
  for (const list of [0, 1, 2, 3]) {
    const w = new ByteWriter().u8(1).uint(0).uint(0);
    for (let i = 0; i < list; i++) w.uint(0);
    w.uint(Number.MAX_SAFE_INTEGER);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => decodeDeletionRecord(w.finish(), 'records/x'), /records\/x claims \d+ .*more than its \d+ bytes can hold/);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20);
  }
  assert.throws(() => decodeDeletionRecord(new ByteWriter().u8(1).uint(0).uint(1 << 20).finish(), 'r'), /host name of 1048576 bytes/);
  assert.throws(() => decodeDeletionRecord(Buffer.from([2]), 'r'), /unknown deletion record version 2/);
  assert.throws(() => decodeDeletionRecord(Buffer.concat([encodeDeletionRecord(record), Buffer.from([0])]), 'r'), /trailing bytes/);
});

test('writer markers: round trip; wrong fields, junk and huge inputs give FormatErrors only', () => {
  assert.deepEqual(decodeWriterMarker(encodeWriterMarker(marker), 'm'), marker);
  const good = encodeWriterMarker(marker);
  for (let i = 0; i < 3000; i++) {
    onlyFormatErrors(() => decodeWriterMarker(crypto.randomBytes(crypto.randomInt(200)), 'm'));
    onlyFormatErrors(() => decodeWriterMarker(mutate(good, 1 + crypto.randomInt(3)), 'm'));
  }
  for (const bad of [
    { writer: 'xyz' },
    { sequence: -1 },
    { sequence: 1.5 },
    { time: 'yesterday' },
    { pid: '42' },
    { exclusive: 'no' },
    { version: 2 },
    { host: 'h'.repeat(5000) },
    { scope: undefined },
  ]) {
    assert.throws(() => decodeWriterMarker(Buffer.from(JSON.stringify({ ...marker, ...bad })), 'writers/x'), /writers\/x is not a version 1 writer marker/, JSON.stringify(bad).slice(0, 40));
  }
  for (const junk of ['null', '[]', '"x"', '1', '{']) assert.throws(() => decodeWriterMarker(Buffer.from(junk), 'm'), FormatError);
  assert.throws(() => decodeWriterMarker(Buffer.alloc(1 << 20, 0x20), 'm'), /too big for a writer marker/);
});
