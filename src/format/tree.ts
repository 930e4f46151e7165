// One tree blob per directory: its entries sorted by name bytes in a fixed binary encoding, so an
// unchanged directory encodes to the same bytes, gets the same id, and is stored once.
import { ByteReader, ByteWriter, FormatError } from './bytes.ts';
import { ID_BYTES } from './crypto.ts';
import { MAX_TREE_ENTRIES } from './limits.ts';

export const NodeType = { File: 1, Dir: 2, Symlink: 3, Fifo: 4, CharDevice: 5, BlockDevice: 6, Socket: 7 } as const;
export type NodeType = (typeof NodeType)[keyof typeof NodeType];

const TYPE_NAMES: Record<NodeType, string> = {
  [NodeType.File]: 'file',
  [NodeType.Dir]: 'dir',
  [NodeType.Symlink]: 'symlink',
  [NodeType.Fifo]: 'fifo',
  [NodeType.CharDevice]: 'chardev',
  [NodeType.BlockDevice]: 'blockdev',
  [NodeType.Socket]: 'socket',
};

export function nodeTypeName(type: NodeType): string {
  return TYPE_NAMES[type];
}

export interface NodeMeta {
  readonly type: NodeType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly inode: bigint;
  readonly device: bigint;
  readonly links: number;
  /** Bytes of a file; 0 for other types. */
  readonly size: number;
}

export interface TreeNode extends NodeMeta {
  /** Raw name bytes: names that are not valid UTF-8 survive. */
  readonly name: Buffer;
  /** File: chunk ids, 32 bytes each, in order. */
  readonly content?: Buffer;
  /** File: holes were seen (allocated blocks < size); restore leaves zero runs as holes. */
  readonly sparse?: boolean;
  /** Directory: id of its tree blob. */
  readonly subtree?: Buffer;
  /** Symlink: raw target bytes (not followed). */
  readonly linkTarget?: Buffer;
  /** Character/block device number. */
  readonly rdev?: bigint;
}

const TREE_VERSION = 1;
/** User and group ids are 32-bit numbers. */
const MAX_ID = 0xffffffff;
const FLAG_SPARSE = 1;

export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Deterministic encoding; nodes must have distinct names and are sorted here. */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  const sorted = [...nodes].sort((a, b) => compareNames(a.name, b.name));
  const w = new ByteWriter(64 + sorted.length * 96).u8(TREE_VERSION).uint(sorted.length);
  let previous: Buffer | undefined;
  for (const n of sorted) {
    if (previous && previous.equals(n.name)) throw new FormatError(`duplicate name in tree: ${n.name.toString()}`);
    previous = n.name;
    w.lengthPrefixed(n.name).u8(n.type).uint(n.mode).uint(n.uid).uint(n.gid);
    w.bigInt(n.mtimeNs).bigInt(n.ctimeNs).bigUint(n.inode).bigUint(n.device).uint(n.links).uint(n.size);
    switch (n.type) {
      case NodeType.File: {
        const content = n.content ?? Buffer.alloc(0);
        w.u8(n.sparse ? FLAG_SPARSE : 0).uint(content.length / ID_BYTES).bytes(content);
        break;
      }
      case NodeType.Dir:
        if (!n.subtree) throw new FormatError(`directory ${n.name.toString()} has no subtree`);
        w.bytes(n.subtree);
        break;
      case NodeType.Symlink:
        w.lengthPrefixed(n.linkTarget ?? Buffer.alloc(0));
        break;
      case NodeType.CharDevice:
      case NodeType.BlockDevice:
        w.bigUint(n.rdev ?? 0n);
        break;
    }
  }
  return w.finish();
}

/** A name that restore could use to leave its target ('..', '/', NUL) is rejected, whoever wrote the tree. */
function checkName(name: Uint8Array): void {
  if (name.length === 0 || name.includes(0x2f) || name.includes(0) || (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e)))) {
    throw new FormatError(`malformed tree: unsafe entry name ${JSON.stringify(Buffer.from(name).toString())}`);
  }
}

export function decodeTree(bytes: Uint8Array): TreeNode[] {
  const r = new ByteReader(bytes, 'tree');
  const version = r.u8();
  if (version !== TREE_VERSION) throw new FormatError(`malformed tree: unknown version ${version}`);
  // A node takes at least eleven bytes: the name's length, the type and nine varints.
  const count = r.count(11);
  if (count > MAX_TREE_ENTRIES) throw new FormatError(`malformed tree: ${count} entries, more than a directory may have (${MAX_TREE_ENTRIES})`);
  const nodes: TreeNode[] = [];
  let previous: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const name = Buffer.from(r.lengthPrefixed());
    checkName(name);
    if (previous && compareNames(previous, name) >= 0) throw new FormatError('malformed tree: entries out of order');
    previous = name;
    const type = r.u8() as NodeType;
    if (!(type in TYPE_NAMES)) throw new FormatError(`malformed tree: unknown node type ${type}`);
    const meta = {
      name,
      type,
      mode: r.uintAtMost(0o7777, 'mode'),
      uid: r.uintAtMost(MAX_ID, 'uid'),
      gid: r.uintAtMost(MAX_ID, 'gid'),
      mtimeNs: r.bigInt(),
      ctimeNs: r.bigInt(),
      inode: r.bigUint(),
      device: r.bigUint(),
      links: r.uint(),
      size: r.uint(),
    };
    switch (type) {
      case NodeType.File: {
        const flags = r.u8();
        const content = Buffer.from(r.bytes(r.uint() * ID_BYTES));
        nodes.push({ ...meta, content, sparse: (flags & FLAG_SPARSE) !== 0 });
        break;
      }
      case NodeType.Dir:
        nodes.push({ ...meta, subtree: Buffer.from(r.bytes(ID_BYTES)) });
        break;
      case NodeType.Symlink:
        nodes.push({ ...meta, linkTarget: Buffer.from(r.lengthPrefixed()) });
        break;
      case NodeType.CharDevice:
      case NodeType.BlockDevice:
        nodes.push({ ...meta, rdev: r.bigUint() });
        break;
      default:
        nodes.push(meta);
    }
  }
  r.expectEnd();
  return nodes;
}

/** Chunk ids of a file node as separate 32-byte views. */
export function contentIds(node: TreeNode): Buffer[] {
  const ids: Buffer[] = [];
  const content = node.content;
  if (content) for (let i = 0; i < content.length; i += ID_BYTES) ids.push(content.subarray(i, i + ID_BYTES));
  return ids;
}
