// Decoders meet damaged and hostile bytes: they throw a FormatError or AuthenticationError naming the
// object, and never accept altered data.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { ByteReader, ByteWriter, FormatError } from '../src/format/bytes.ts';
import { compress } from '../src/format/compression.ts';
import { decodeConfig, encodeConfig, newConfig, UnsupportedVersionError } from '../src/format/config.ts';
import { AuthenticationError, generateMasterKeys, openObject, sealObject } from '../src/format/crypto.ts';
import { decodeIndex, encodeIndex } from '../src/format/index-file.ts';
import { decodeKeyFile, encodeKeyFile, unwrapKeys, wrapKeys } from '../src/format/keyfile.ts';
import { BlobType, PackWriter, openHeader, packKey, parseTrailer, TRAILER_BYTES } from '../src/format/pack.ts';
import { decodeTree, encodeTree, NodeType } from '../src/format/tree.ts';

const keys = generateMasterKeys();

function fileNode(name: string) {
  return { name: Buffer.from(name), type: NodeType.File, mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 1n, device: 1n, links: 1, size: 0 };
}

test('every single-bit flip in a sealed object is detected', () => {
  const sealed = sealObject(keys.dataKey, 'index', Buffer.from('some index bytes'));
  for (let bit = 0; bit < sealed.length * 8; bit += 7) {
    const damaged = Buffer.from(sealed);
    damaged[bit >> 3]! ^= 1 << (bit & 7);
    assert.throws(() => openObject(keys.dataKey, 'index', damaged, 'index/x'), (e) => e instanceof AuthenticationError || e instanceof FormatError);
  }
});

test('a pack header flip, a truncated pack and a foreign key are all refused', () => {
  const writer = new PackWriter(keys.dataKey);
  writer.add(BlobType.Data, crypto.randomBytes(32), { flag: 0, body: Buffer.from([1, 2, 3]) }, 3);
  const { bytes } = writer.seal();
  const trailer = parseTrailer(bytes.subarray(-TRAILER_BYTES), 'pack');
  const headerOffset = bytes.length - TRAILER_BYTES - trailer.headerLength;
  const header = Buffer.from(bytes.subarray(headerOffset, headerOffset + trailer.headerLength));
  header[3]! ^= 0x10;
  assert.throws(() => openHeader(packKey(keys.dataKey, trailer.salt), header, headerOffset, 'pack p'), /pack p header fails authentication/);
  assert.throws(() => parseTrailer(bytes.subarray(-TRAILER_BYTES + 1), 'pack p'), /no pack trailer/);
  const good = bytes.subarray(headerOffset, headerOffset + trailer.headerLength);
  assert.throws(() => openHeader(packKey(generateMasterKeys().dataKey, trailer.salt), good, headerOffset, 'pack p'), AuthenticationError);
  assert.throws(() => openHeader(packKey(keys.dataKey, trailer.salt), good, headerOffset + 1, 'pack p'), /lists \d+ bytes of blobs/);
});

test('trees with unsafe, duplicate or unsorted names are rejected', () => {
  const encodeRaw = (names: Buffer[]): Buffer => {
    const w = new ByteWriter().u8(1).uint(names.length);
    for (const name of names) w.lengthPrefixed(name).u8(NodeType.Fifo).uint(0).uint(0).uint(0).bigInt(0n).bigInt(0n).bigUint(0n).bigUint(0n).uint(1).uint(0);
    return w.finish();
  };
  for (const bad of ['..', '.', 'a/b', '', 'nul\0']) assert.throws(() => decodeTree(encodeRaw([Buffer.from(bad)])), /unsafe entry name/);
  assert.throws(() => decodeTree(encodeRaw([Buffer.from('b'), Buffer.from('a')])), /out of order/);
  assert.throws(() => decodeTree(encodeRaw([Buffer.from('a'), Buffer.from('a')])), /out of order/);
  assert.throws(() => encodeTree([fileNode('x'), fileNode('x')]), /duplicate name/);
  assert.equal(decodeTree(encodeRaw([Buffer.from([0xff, 0xfe])]))[0]!.name.toString('hex'), 'fffe', 'non-UTF-8 names are fine');
});

/** Decoding junk either fails with a FormatError or yields a value whose encoding is exactly the junk:
 * a short input such as [version 1, 0 entries] is a valid empty tree, but no two encodings mean one value. */
function assertRejectedOrCanonical<T>(junk: Buffer, decode: (bytes: Buffer) => T, encode: (value: T) => Buffer): void {
  let value: T;
  try {
    value = decode(junk);
  } catch (e) {
    assert.ok(e instanceof FormatError, `${String(e)} for ${junk.toString('hex')}`);
    return;
  }
  assert.equal(encode(value).toString('hex'), junk.toString('hex'), 'a decoded value encodes back to the same bytes');
}

test('random bytes never decode as a tree or an index, unless they are that tree or index exactly', () => {
  for (let i = 0; i < 3000; i++) {
    const junk = crypto.randomBytes(1 + (i % 97));
    if (i % 2) junk[0] = 1;
    if (i % 4 === 1) junk[1] = 0;
    assertRejectedOrCanonical(junk, decodeTree, encodeTree);
    assertRejectedOrCanonical(junk, (bytes) => decodeIndex(bytes, 'index/x'), encodeIndex);
  }
  const tree = encodeTree([fileNode('a'), fileNode('b')]);
  for (let cut = 1; cut < tree.length; cut++) assert.throws(() => decodeTree(tree.subarray(0, cut)), FormatError);
});

test('a config from a newer format version is refused with advice to upgrade', () => {
  const config = { ...newConfig(keys.dataKey), version: 2 };
  assert.throws(() => decodeConfig(encodeConfig(config)), (e) => e instanceof UnsupportedVersionError && /upgrade Coffer/.test(e.message));
  assert.throws(() => decodeConfig(Buffer.from('{"format":"restic"}')), /not a Coffer repository config/);
  assert.throws(() => decodeConfig(Buffer.from('\x00\x01')), /not valid JSON/);
});

test('key files: wrong passphrase, tampering and absurd KDF parameters', async () => {
  const file = await wrapKeys(keys, 'right', { host: 'h', user: 'u' });
  const decoded = decodeKeyFile(encodeKeyFile(file), 'keys/k');
  assert.ok((await unwrapKeys(decoded, 'right', 'keys/k')).idKey.equals(keys.idKey));
  await assert.rejects(unwrapKeys(decoded, 'wrong', 'keys/k'), AuthenticationError);
  const tampered = { ...decoded, host: 'other', data: Buffer.from(Buffer.from(decoded.data, 'base64').map((b, i) => (i === 5 ? b ^ 1 : b))).toString('base64') };
  await assert.rejects(unwrapKeys(tampered, 'right', 'keys/k'), AuthenticationError);
  const greedy = { ...decoded, kdf: { ...decoded.kdf, memory: 1 << 30 } };
  assert.throws(() => decodeKeyFile(Buffer.from(JSON.stringify(greedy)), 'keys/k'), /unreasonable KDF parameters/);
});

test('64-bit varints round-trip at every edge; longer ones are refused', () => {
  const edges = [0n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 1700000000123456789n, 2n ** 63n, 2n ** 64n - 1n];
  for (let shift = 0n; shift < 64n; shift += 7n) edges.push((1n << shift) - 1n, 1n << shift);
  const w = new ByteWriter();
  for (const v of edges) w.bigUint(v).bigInt(v / 2n).bigInt(-v / 2n);
  const r = new ByteReader(w.finish(), 'varints');
  for (const v of edges) assert.deepEqual([r.bigUint(), r.bigInt(), r.bigInt()], [v, v / 2n, -v / 2n]);
  r.expectEnd();
  assert.throws(() => new ByteWriter().bigUint(2n ** 64n), RangeError);
  assert.throws(() => new ByteReader(Buffer.from('ffffffffffffffffff02', 'hex'), 'varint').bigUint(), /integer too large/);
});

test('a varint padded with a zero last byte is refused: each value has one encoding', () => {
  for (const padded of ['8000', '8100', 'ff8000', '808080808000']) {
    assert.throws(() => new ByteReader(Buffer.from(padded, 'hex'), 'varint').uint(), /malformed varint: varint longer than its value needs/);
    assert.throws(() => new ByteReader(Buffer.from(padded, 'hex'), 'varint').bigUint(), /varint longer than its value needs/);
  }
  // The minimal forms of the same values still read.
  for (const [hex, value] of [['00', 0], ['01', 1], ['7f', 127], ['8001', 128], ['ff7f', 16383]] as const) {
    assert.equal(new ByteReader(Buffer.from(hex, 'hex'), 'varint').uint(), value);
    assert.equal(new ByteReader(Buffer.from(hex, 'hex'), 'varint').bigUint(), BigInt(value));
  }
  // A tree whose node count is padded (0x01 version, count 0 as 0x80 0x00) is refused.
  assert.throws(() => decodeTree(Buffer.from('018000', 'hex')), /varint longer than its value needs/);
});

test('big incompressible chunks are stored raw without compressing them whole; compressible ones are compressed', () => {
  const random = crypto.randomBytes(1 << 20);
  assert.equal(compress(random).flag, 0);
  assert.equal(compress(random).body, random, 'the raw body is the chunk itself, not a copy');
  const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(30_000));
  const framed = compress(text);
  assert.equal(framed.flag, 1);
  assert.ok(framed.body.length < text.length / 20);
});
