// The test vectors of docs/FORMAT.md section 13, recomputed from the code.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ByteWriter } from '../src/format/bytes.ts';
import { Chunker, gearTable } from '../src/format/chunker.ts';
import { compress, compressPayload, decompressPayload } from '../src/format/compression.ts';
import { canonicalJson, configMac, verifyConfig } from '../src/format/config.ts';
import { blobId, openObject, sealObject, secretKey } from '../src/format/crypto.ts';
import { decodeIndex, encodeIndex } from '../src/format/index-file.ts';
import { decodeDeletionRecord, encodeDeletionRecord } from '../src/format/deletion-record.ts';
import { BlobType, PackWriter, openBlob, openHeader, packKey, parseTrailer, TRAILER_BYTES } from '../src/format/pack.ts';
import { decodeSnapshot } from '../src/format/snapshot.ts';
import { decodeTree, encodeTree, NodeType } from '../src/format/tree.ts';

const spec = fs.readFileSync(path.join(import.meta.dirname, '../docs/FORMAT.md'), 'utf8');
/** The hex block that follows `heading` in FORMAT.md, joined into one string. */
function specHex(heading: string): string {
  const start = spec.indexOf(heading);
  const block = /```\n([0-9a-f\n]+)```/.exec(spec.slice(start))!;
  return block[1]!.replace(/\n/g, '');
}

const idKey = secretKey(Buffer.alloc(32, 1));
const dataKey = Buffer.alloc(32, 2);
const hello = Buffer.from('hello');
const hellos = Buffer.from(`${'hello '.repeat(13)}hello`);

test('varints and zigzag', () => {
  const bytes = new ByteWriter().uint(0).uint(127).uint(128).uint(300).bigInt(-1n).bigInt(1n).finish();
  assert.equal(bytes.toString('hex'), '007f8001ac020102');
});

test('gear table and chunk cut points', () => {
  const seed = Buffer.alloc(32);
  const gear = gearTable(seed);
  assert.deepEqual([...gear.slice(0, 4)].map((g) => (g >>> 0).toString(16).padStart(8, '0')), ['cc9e66f2', '42d53a9a', '11201ca7', '0eb84c1a']);
  assert.equal((gear[255]! >>> 0).toString(16), '376d7c7f');
  const data = crypto.createCipheriv('aes-256-ctr', Buffer.alloc(32), Buffer.alloc(16)).update(Buffer.alloc(16 << 20));
  const chunker = new Chunker(seed);
  const cuts: number[] = [];
  for (let start = 0; start < data.length; start = cuts[cuts.length - 1]!) cuts.push(chunker.nextCut(data, start, data.length));
  assert.deepEqual(cuts, [610559, 2324995, 3550536, 4866397, 5964026, 7022921, 8287878, 9445204, 10332619, 12716776, 14090927, 15082945, 16777216]);
  // The cut only depends on the bytes, not on how much was handed over beyond `max`.
  assert.equal(chunker.nextCut(data, 0, 8 << 20), 610559);
});

test('blob id and zstd framing', () => {
  assert.equal(blobId(idKey, hello).toString('hex'), '3a4d75699f355339725ecf666241ddd9c5ca105542c40a7f5607efc7ece5f67e');
  const framed = compressPayload(hellos);
  assert.equal(framed.toString('hex'), '0128b52ffd20536d00003068656c6c6f2001001ab41401');
  assert.ok(decompressPayload(framed, hellos.length, 'vector').equals(hellos));
  assert.equal(compressPayload(hello)[0], 0, 'tiny plaintexts are stored raw');
});

test('pack bytes, header and blobs', () => {
  const writer = new PackWriter(dataKey, { salt: Buffer.alloc(32, 3) });
  for (const raw of [hello, hellos]) writer.add(BlobType.Data, blobId(idKey, raw), compress(raw), raw.length);
  const sealed = writer.seal();
  assert.equal(sealed.id, '223b17d6039066bdc979837231cfd159d0a1e5826ff7afd50f3220facdb9b028');
  assert.equal(sealed.bytes.toString('hex'), specHex('**Pack.**'));

  const trailer = parseTrailer(sealed.bytes.subarray(-TRAILER_BYTES), 'vector');
  const headerOffset = sealed.bytes.length - TRAILER_BYTES - trailer.headerLength;
  const key = packKey(dataKey, trailer.salt);
  const entries = openHeader(key, sealed.bytes.subarray(headerOffset, headerOffset + trailer.headerLength), headerOffset, 'vector');
  assert.deepEqual(entries.map((e) => [e.offset, e.length, e.rawLength]), [[0, 22, 5], [22, 39, 83]]);
  const second = entries[1]!;
  const framed = openBlob(key, second.offset, second.type, second.id, sealed.bytes.subarray(second.offset, second.offset + second.length), 'vector');
  assert.ok(decompressPayload(framed, second.rawLength, 'vector').equals(hellos));
  // The nonce is the offset: the same ciphertext read as if it sat elsewhere does not authenticate.
  assert.throws(() => openBlob(key, 0, second.type, second.id, sealed.bytes.subarray(second.offset, second.offset + second.length), 'vector'), /fails authentication/);

  const index = encodeIndex([{ id: Buffer.from(sealed.id, 'hex'), salt: sealed.salt, entries: sealed.entries }]);
  assert.equal(index.toString('hex'), specHex('**Index**'));
  assert.deepEqual(decodeIndex(index, 'vector')[0]!.entries, sealed.entries);
});

test('tree encoding', () => {
  const nodes = [
    { name: Buffer.from('b.txt'), type: NodeType.File, mode: 0o644, uid: 1000, gid: 1000, mtimeNs: 1700000000123456789n, ctimeNs: 1700000000123456789n, inode: 42n, device: 2049n, links: 1, size: 5, content: blobId(idKey, hello), sparse: false },
    { name: Buffer.from('a'), type: NodeType.Symlink, mode: 0o777, uid: 0, gid: 0, mtimeNs: -1500000000n, ctimeNs: 0n, inode: 7n, device: 2049n, links: 1, size: 0, linkTarget: Buffer.from('b.txt') },
  ];
  const bytes = encodeTree(nodes);
  assert.equal(bytes.toString('hex'), specHex('**Tree**'));
  const decoded = decodeTree(bytes);
  assert.deepEqual(decoded.map((n) => n.name.toString()), ['a', 'b.txt']);
  assert.equal(decoded[0]!.mtimeNs, -1500000000n);
  assert.ok(decoded[1]!.content!.equals(blobId(idKey, hello)));
});

test('standalone object envelope', () => {
  const sealed = sealObject(dataKey, 'snapshot', compressPayload(Buffer.from('{}')), Buffer.alloc(32, 4));
  assert.equal(sealed.toString('hex'), specHex('**Standalone object**'));
  assert.equal(decompressPayload(openObject(dataKey, 'snapshot', sealed, 'vector'), { atMost: 2 }, 'vector').toString(), '{}');
  assert.throws(() => openObject(dataKey, 'index', sealed, 'vector'), /fails authentication/, 'a snapshot cannot be read as an index');
});

test('config MAC', () => {
  const config = { format: 'coffer', version: 1, id: 'ab'.repeat(32), created: '2026-11-23T16:45:29.938Z', chunker: { algorithm: 'fastcdc-gear32', min: 524288, avg: 1048576, max: 8388608 } } as const;
  const canonical = canonicalJson(config);
  assert.equal(canonical, `{"chunker":{"algorithm":"fastcdc-gear32","avg":1048576,"max":8388608,"min":524288},"created":"2026-11-23T16:45:29.938Z","format":"coffer","id":"${'ab'.repeat(32)}","version":1}`);
  assert.ok(spec.includes(canonical.replace('ab'.repeat(32), 'abab…abab')), 'FORMAT.md shows the canonical form');
  const mac = configMac(config, dataKey);
  assert.equal(mac, '9156b633146eaf13625f28b617d8a3cd2d92bee5e849a698e2b17a88c4f23287');
  assert.ok(spec.includes(`\`mac\` = \`${mac}\``));
  assert.equal(verifyConfig({ ...config, mac }, dataKey), 'authentic');
  assert.equal(verifyConfig({ ...config, mac }, Buffer.alloc(32, 3)), 'tampered');
  assert.equal(verifyConfig(config, dataKey), 'legacy', 'no MAC, 0.1.0 chunker sizes');
  assert.equal(verifyConfig({ ...config, chunker: { ...config.chunker, min: 65536 } }, dataKey), 'tampered', 'no MAC, other sizes');
});

test('deletion record', () => {
  const record = {
    timeMs: 1_700_000_000_000,
    host: 'vm',
    snapshots: [Buffer.alloc(32, 0x11)],
    packs: [Buffer.alloc(32, 0x22), Buffer.alloc(32, 0x23)],
    indexes: [Buffer.alloc(32, 0x44)],
    writers: [Buffer.alloc(16, 0x55)],
  };
  const bytes = encodeDeletionRecord(record);
  assert.equal(bytes.toString('hex'), specHex('**Deletion record**'));
  assert.deepEqual(decodeDeletionRecord(bytes, 'vector'), record);
  const sealed = sealObject(dataKey, 'deletion', compressPayload(bytes));
  assert.throws(() => openObject(dataKey, 'snapshot', sealed, 'vector'), /fails authentication/, 'a deletion record cannot be read as a snapshot');
});

test('partial snapshot', () => {
  const start = spec.indexOf('The **partial snapshot** vector');
  const json = /```json\n(.+)\n```/.exec(spec.slice(start))![1]!;
  const snapshot = decodeSnapshot(Buffer.from(json), 'vector');
  assert.deepEqual(snapshot.partial, { missing: [{ path: '/data/extra' }, { dir: '/data/big', from: 'm', to: 't' }] });
  const withPartial = (partial: unknown): Buffer => Buffer.from(JSON.stringify({ ...JSON.parse(json), partial }));
  for (const bad of [null, {}, { missing: [] }, { missing: [{}] }, { missing: [{ path: '/a', dir: '/b' }] }, { missing: [{ dir: 5 }] }, { missing: [{ dir: '/a', from: 1 }] }, { missing: ['x'] }]) {
    assert.throws(() => decodeSnapshot(withPartial(bad), 'vector'), /its partial is missing or malformed/, JSON.stringify(bad));
  }
});
