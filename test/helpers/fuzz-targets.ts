// Every decoder of repository data (and of the other untrusted inputs: object names, locations), with
// valid encodings to start the fuzzer from. Shared by test/fuzz.test.ts and `npm run bench -- fuzz`.
import crypto from 'node:crypto';
import { ByteWriter } from '../../src/format/bytes.ts';
import { compressPayload, decompressPayload } from '../../src/format/compression.ts';
import { decodeConfig, encodeConfig, newConfig } from '../../src/format/config.ts';
import { decodeDeletionRecord, encodeDeletionRecord } from '../../src/format/deletion-record.ts';
import { generateMasterKeys, openObject, sealObject } from '../../src/format/crypto.ts';
import { decodeIndex, encodeIndex } from '../../src/format/index-file.ts';
import { decodeKeyFile, encodeKeyFile, type KeyFile } from '../../src/format/keyfile.ts';
import { BlobType, decodeHeader, PackWriter, parseTrailer, TRAILER_BYTES } from '../../src/format/pack.ts';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../../src/format/snapshot.ts';
import { decodeTree, encodeTree, NodeType, type TreeNode } from '../../src/format/tree.ts';
import { decodeWriterMarker, encodeWriterMarker } from '../../src/format/writer-marker.ts';
import { isObjectName } from '../../src/store/layout.ts';
import { parseRestLocation, parseS3Location, parseSftpLocation } from '../../src/store/locations.ts';
import type { FuzzTarget } from './fuzz.ts';

const keys = generateMasterKeys();
const id = (n: number): Buffer => crypto.hash('sha256', String(n), 'buffer');
const meta = { mode: 0o644, uid: 1000, gid: 1000, mtimeNs: 1_700_000_000_123_456_789n, ctimeNs: -5n, inode: 2n ** 63n, device: 2049n, links: 1, size: 0 };

function trees(): Buffer[] {
  const nodes: TreeNode[] = [
    { ...meta, type: NodeType.File, name: Buffer.from('file'), size: 10, content: Buffer.concat([id(1), id(2)]), sparse: true },
    { ...meta, type: NodeType.Dir, name: Buffer.from('dir'), subtree: id(3) },
    { ...meta, type: NodeType.Symlink, name: Buffer.from([0xff, 0xfe]), linkTarget: Buffer.from('../x') },
    { ...meta, type: NodeType.CharDevice, name: Buffer.from('null'), rdev: 259n },
    { ...meta, type: NodeType.Fifo, name: Buffer.from('fifo') },
  ];
  return [encodeTree(nodes), encodeTree([]), encodeTree(nodes.slice(0, 1))];
}

function indexes(): Buffer[] {
  const entry = (n: number, type: 0 | 1, offset: number) => ({ type, id: id(n), offset, length: 100, rawLength: 200 });
  return [
    encodeIndex([{ id: id(10), salt: id(11), entries: [entry(1, BlobType.Data, 0), entry(2, BlobType.Tree, 100)] }, { id: id(12), salt: id(13), entries: [] }]),
    encodeIndex([]),
  ];
}

function headers(): Buffer[] {
  const w = new ByteWriter().uint(2);
  for (const n of [1, 2]) w.u8(BlobType.Data).bytes(id(n)).uint(100).uint(200);
  return [w.finish(), new ByteWriter().uint(0).finish()];
}

function snapshots(): Buffer[] {
  const snapshot: Snapshot = {
    version: 1,
    time: '2026-11-23T16:45:30.102Z',
    host: 'h',
    user: 'u',
    paths: ['/a', '/b'],
    tags: ['t'],
    tree: id(1).toString('hex'),
    parent: id(2).toString('hex'),
    program: 'coffer',
    summary: { filesNew: 1, filesChanged: 0, filesUnmodified: 0, dirs: 1, totalFiles: 1, totalBytes: 5, dataBlobs: 1, treeBlobs: 1, bytesAdded: 99, warnings: 0, durationMs: 3 },
  };
  return [encodeSnapshot(snapshot)];
}

function keyFiles(): Buffer[] {
  const file: KeyFile = {
    version: 1,
    created: '2026-11-23T16:45:29.938Z',
    host: 'h',
    user: 'u',
    kdf: { algorithm: 'argon2id', memory: 65536, passes: 3, parallelism: 4, salt: crypto.randomBytes(16).toString('base64') },
    nonce: crypto.randomBytes(12).toString('base64'),
    data: crypto.randomBytes(170).toString('base64'),
  };
  return [encodeKeyFile(file)];
}

function packTrailers(): Buffer[] {
  const writer = new PackWriter(keys.dataKey);
  writer.add(BlobType.Data, id(1), { flag: 0, body: Buffer.from('x') }, 1);
  return [writer.seal().bytes.subarray(-TRAILER_BYTES)];
}

const text = (input: Buffer): string => input.toString('utf8');

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  { name: 'tree', seeds: trees(), run: (input) => decodeTree(input) },
  { name: 'index file', seeds: indexes(), run: (input) => decodeIndex(input, 'index/x') },
  { name: 'pack header', seeds: headers(), run: (input) => decodeHeader(input, 200, 'pack p') },
  { name: 'pack trailer', seeds: packTrailers(), run: (input) => parseTrailer(input, 'pack p') },
  { name: 'snapshot', seeds: snapshots(), run: (input) => decodeSnapshot(input, 'snapshots/x'), json: true },
  { name: 'key file', seeds: keyFiles(), run: (input) => decodeKeyFile(input, 'keys/x'), json: true },
  { name: 'config', seeds: [encodeConfig(newConfig(keys.dataKey))], run: (input) => decodeConfig(input), json: true },
  {
    name: 'deletion record',
    seeds: [encodeDeletionRecord({ timeMs: 1_700_000_000_000, host: 'h', snapshots: [id(1)], packs: [id(2), id(3)], indexes: [id(4)], writers: [id(5).subarray(0, 16)] })],
    run: (input) => decodeDeletionRecord(input, 'deletions/x'),
  },
  {
    name: 'writer marker',
    seeds: [
      encodeWriterMarker({ version: 1, writer: 'ab'.repeat(16), sequence: 4, time: '2026-11-23T16:45:29.938Z', started: '2026-11-23T16:40:00.000Z', host: 'h', scope: 'h|boot|pid:[1]', pid: 42, command: 'backup', exclusive: false }),
    ],
    run: (input) => decodeWriterMarker(input, 'writers/x'),
    json: true,
  },
  {
    name: 'compressed payload',
    seeds: [compressPayload(Buffer.from('hello '.repeat(100))), compressPayload(Buffer.from('x'))],
    run: (input) => {
      decompressPayload(input, { atMost: 1 << 20 }, 'payload');
      decompressPayload(input, 600, 'payload');
    },
  },
  {
    name: 'sealed object',
    seeds: [sealObject(keys.dataKey, 'index', compressPayload(indexes()[0]!))],
    run: (input) => openObject(keys.dataKey, 'index', input, 'index/x'),
  },
  {
    name: 'object names',
    seeds: ['config', `keys/${id(1).toString('hex')}`, `data/${id(2).toString('hex').slice(0, 2)}/${id(2).toString('hex')}`, 'tmp/coffer-probe-0123456789abcdef'].map((n) => Buffer.from(n)),
    run: (input) => {
      const name = text(input);
      // A name the layout accepts is a safe relative path on every backend.
      if (isObjectName(name) && (name.split('/').some((part) => part === '' || part === '.' || part === '..') || /[\\\0]/.test(name))) {
        throw new Error(`the layout accepts ${JSON.stringify(name)}`);
      }
    },
  },
  {
    name: 'locations',
    seeds: ['s3:https://host:9000/bucket/prefix', 's3:host/bucket', 'sftp://user@host:2222/~/path', 'sftp:user@host:path', 'rest:https://user:pw@host:8000/repo/'].map((l) => Buffer.from(l)),
    run: (input) => {
      const location = text(input);
      if (location.startsWith('s3:')) parseS3Location(location);
      else if (location.startsWith('rest:')) parseRestLocation(location);
      else parseSftpLocation(location);
    },
  },
];
