// Integrity check. Structure: every index file and snapshot decrypts, every tree of every snapshot is
// readable, every blob a tree names is indexed, every indexed pack exists. With --read-data (or a
// subset), packs are downloaded and every blob decrypted and verified against its id, naming the
// damaged pack and blob precisely.
import crypto from 'node:crypto';
import { toHex } from '../format/bytes.ts';
import { decompressPayload } from '../format/compression.ts';
import { blobId, contentId } from '../format/crypto.ts';
import { BlobType, blobTypeName, openBlob } from '../format/pack.ts';
import { NodeType, contentIds, type TreeNode } from '../format/tree.ts';
import { parsePack } from '../repo/pack-reader.ts';
import type { Repository } from '../repo/repository.ts';
import { idOf, packName, type Store } from '../store/store.ts';
import { Breather } from './breather.ts';
import { MAX_TREE_DEPTH, tooDeep } from './tree-walk.ts';

export type ReadDataMode = { readonly kind: 'none' } | { readonly kind: 'all' } | { readonly kind: 'subset'; readonly percent: number };

export interface CheckOptions {
  readonly readData: ReadDataMode;
  readonly onProgress?: (message: string) => void;
}

export interface CheckResult {
  readonly errors: string[];
  /** Not damage, but worth knowing (e.g. packs that no index lists yet). */
  readonly notes: string[];
  readonly snapshots: number;
  readonly trees: number;
  readonly packs: number;
  readonly packsRead: number;
  readonly blobsVerified: number;
}

export async function runCheck(repo: Repository, options: CheckOptions): Promise<CheckResult> {
  const errors: string[] = [];
  const notes: string[] = [];
  const say = options.onProgress ?? (() => {});

  say('loading index');
  const indexNames = new Set<string>();
  for (const store of repo.stores) for await (const o of store.list('index')) indexNames.add(o.name);
  for (const name of indexNames) {
    try {
      for (const pack of await repo.readIndexFile(name)) repo.index.addPack(pack);
    } catch (err) {
      errors.push(`index file ${name}: ${(err as Error).message}`);
    }
  }

  // Every replica must hold every indexed pack, and --read-data reads each replica's copy.
  say('listing packs');
  const storedOn = new Map<Store, Map<string, number>>();
  for (const store of repo.stores) {
    const stored = await listPacks(store);
    storedOn.set(store, stored);
    const where = repo.stores.length > 1 ? ` on ${store.location}` : '';
    for (const id of repo.index.packIds()) {
      if (!stored.has(id)) errors.push(`pack ${packName(id)} is listed in the index but missing from ${store.location}`);
    }
    for (const id of stored.keys()) {
      if (!repo.index.hasPack(Buffer.from(id, 'hex'))) notes.push(`pack ${packName(id)}${where} is not indexed yet (left by an interrupted backup; the next backup adopts it)`);
    }
  }

  say('checking snapshots');
  const snapshotNames = new Set<string>();
  for (const store of repo.stores) for await (const o of store.list('snapshots')) snapshotNames.add(o.name);
  const seenTrees = new Set<string>();
  for (const name of snapshotNames) {
    try {
      const snapshot = await repo.loadSnapshot(name);
      await checkTree(repo, Buffer.from(snapshot.tree, 'hex'), `snapshot ${idOf(name).slice(0, 8)}`, seenTrees, errors);
    } catch (err) {
      errors.push(`snapshot ${name}: ${(err as Error).message}`);
    }
  }

  let packsRead = 0;
  let blobsVerified = 0;
  for (const [store, stored] of storedOn) {
    const toRead = choosePacks([...stored.keys()].filter((id) => repo.index.hasPack(Buffer.from(id, 'hex'))), options.readData);
    for (const [i, id] of toRead.entries()) {
      say(`reading pack ${i + 1}/${toRead.length}${repo.stores.length > 1 ? ` of ${store.location}` : ''}`);
      blobsVerified += await verifyPack(repo, store, id, errors);
      packsRead++;
    }
  }
  const packs = Math.max(0, ...[...storedOn.values()].map((stored) => stored.size));
  return { errors, notes, snapshots: snapshotNames.size, trees: seenTrees.size, packs, packsRead, blobsVerified };
}

async function listPacks(store: Store): Promise<Map<string, number>> {
  const packs = new Map<string, number>();
  for await (const o of store.list('data')) packs.set(idOf(o.name), o.size);
  return packs;
}

/** Every tree below `id` (each once) reads, and every chunk it names is an indexed data blob. */
async function checkTree(repo: Repository, id: Buffer, where: string, seen: Set<string>, errors: string[]): Promise<void> {
  const breather = new Breather();
  const stack: { nodes: TreeNode[]; next: number; where: string }[] = [];
  const enter = async (tree: Buffer, at: string): Promise<void> => {
    const hex = tree.toString('hex');
    if (seen.has(hex)) return;
    seen.add(hex);
    if (stack.length >= MAX_TREE_DEPTH) {
      errors.push(tooDeep(at).message);
      return;
    }
    try {
      stack.push({ nodes: await repo.loadTree(tree), next: 0, where: at });
    } catch (err) {
      errors.push(`${at}: tree ${hex.slice(0, 16)}: ${(err as Error).message}`);
    }
  };
  await enter(id, where);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const node = top.nodes[top.next++];
    if (!node) {
      stack.pop();
      continue;
    }
    await breather.pause();
    const path = `${top.where}/${node.name.toString()}`;
    if (node.type === NodeType.File) {
      for (const chunk of contentIds(node)) {
        const loc = repo.index.lookup(chunk);
        if (!loc) errors.push(`${path}: chunk ${chunk.toString('hex').slice(0, 16)} is not in the index`);
        else if (loc.type !== BlobType.Data) errors.push(`${path}: chunk ${chunk.toString('hex').slice(0, 16)} is indexed as a ${blobTypeName(loc.type)} blob`);
      }
    } else if (node.type === NodeType.Dir && node.subtree) {
      await enter(node.subtree, path);
    }
  }
}

function choosePacks(ids: string[], mode: ReadDataMode): string[] {
  if (mode.kind === 'none') return [];
  if (mode.kind === 'all') return ids;
  // A random sample: repeated subset checks cover different packs over time.
  const count = Math.min(ids.length, Math.max(1, Math.ceil((ids.length * mode.percent) / 100)));
  const shuffled = [...ids];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return shuffled.slice(0, count);
}

/** Downloads one pack and verifies its name, header, agreement with the index and every blob. */
async function verifyPack(repo: Repository, store: Store, id: string, errors: string[]): Promise<number> {
  const name = packName(id);
  const where = repo.stores.length > 1 ? ` on ${store.location}` : '';
  let bytes: Buffer;
  let parsed;
  try {
    bytes = await store.get(name);
    // A wrong hash is reported, and the blobs are still checked to name the damaged one.
    if (contentId(bytes) !== id) errors.push(`pack ${name}${where}: its bytes do not match its name (damaged)`);
    parsed = parsePack(bytes, name, repo.keys.dataKey);
  } catch (err) {
    errors.push(`pack ${name}${where}: ${(err as Error).message}`);
    return 0;
  }
  let verified = 0;
  for (const [i, entry] of parsed.entries.entries()) {
    const what = `pack ${name}${where}: blob ${i} (${blobTypeName(entry.type)} ${toHex(entry.id).slice(0, 16)})`;
    const indexed = repo.index.lookup(entry.id);
    if (indexed && indexed.packId === id && (indexed.offset !== entry.offset || indexed.length !== entry.length)) {
      errors.push(`${what}: the index places it elsewhere in the pack`);
    }
    try {
      const sealed = bytes.subarray(entry.offset, entry.offset + entry.length);
      const raw = decompressPayload(openBlob(parsed.key, entry.offset, entry.type, entry.id, sealed, what), entry.rawLength, what);
      if (!blobId(repo.idKey, raw).equals(entry.id)) throw new Error(`${what} does not match its id`);
      verified++;
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return verified;
}
