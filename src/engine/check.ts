// Integrity check. Structure: every index file and snapshot decrypts, every tree of every snapshot is
// readable, every blob a tree names is indexed, every indexed pack exists. With --read-data (or a
// subset), packs are downloaded and every blob decrypted and verified against its id, naming the
// damaged pack and blob precisely.
import crypto, { type KeyObject } from 'node:crypto';
import { toHex } from '../format/bytes.ts';
import { decompressPayload } from '../format/compression.ts';
import { blobId, contentId } from '../format/crypto.ts';
import { decodeKeyFile } from '../format/keyfile.ts';
import { BlobType, blobTypeName, openBlob, packKey, type PackEntry } from '../format/pack.ts';
import { NodeType, contentIds, type TreeNode } from '../format/tree.ts';
import { readPackHeader } from '../repo/pack-reader.ts';
import { observeWriters } from '../repo/writer-markers.ts';
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

  // What cannot be read is an error here, not a warning: deletion records, writer markers, index files.
  say('loading index');
  const reportDamage = repo.onDamaged;
  repo.onDamaged = (name, reason) => errors.push(`${kindOf(name)} ${name}: ${reason}`);
  // The snapshots are listed before the index files: a backup writes its index files before its
  // snapshot, so every snapshot listed here has its index files in the later listing.
  const snapshotNames = new Set<string>();
  for (const store of repo.stores) for await (const o of store.list('snapshots')) snapshotNames.add(o.name);
  let records;
  try {
    repo.reloadDeletionRecords();
    records = await repo.deletionRecords();
    for (const store of repo.stores) await observeWriters(repo, store, Date.now());
    await checkKeys(repo, errors);
    await repo.loadIndex();
  } finally {
    repo.onDamaged = reportDamage;
  }

  // Every replica must hold every indexed pack, and --read-data reads each replica's copy. A pack
  // marked for deletion may go while this runs (a prune beside it): that alone is no damage.
  say('listing packs');
  const storedOn = new Map<Store, Map<string, number>>();
  const doomedMissing = new Set<string>();
  for (const store of repo.stores) {
    const stored = await listPacks(store);
    storedOn.set(store, stored);
    const where = repo.stores.length > 1 ? ` on ${store.location}` : '';
    for (const id of repo.index.packIds()) {
      if (stored.has(id)) continue;
      if (records.isDoomed(Buffer.from(id, 'hex'))) doomedMissing.add(id);
      else errors.push(`pack ${packName(id)} is listed in the index but missing from ${store.location}`);
    }
    for (const id of stored.keys()) {
      if (repo.index.hasPack(Buffer.from(id, 'hex'))) continue;
      if (records.isDoomed(Buffer.from(id, 'hex'))) notes.push(`pack ${packName(id)}${where} is marked for deletion and no longer indexed (the next prune deletes it, or keeps it if a snapshot needs it)`);
      else notes.push(`pack ${packName(id)}${where} is not indexed yet (left by an interrupted backup; the next backup adopts it)`);
    }
  }

  say('checking snapshots');
  const treeHeights = new Map<string, number>();
  for (const name of snapshotNames) {
    if (records.forgets(name)) {
      notes.push(`snapshot ${name} was forgotten and is still found on a replica; the next prune removes it`);
      continue;
    }
    const found: string[] = [];
    try {
      const snapshot = await repo.loadSnapshot(name);
      await checkTree(repo, Buffer.from(snapshot.tree, 'hex'), `snapshot ${idOf(name).slice(0, 8)}`, treeHeights, found, doomedMissing);
    } catch (err) {
      found.push(`snapshot ${name}: ${(err as Error).message}`);
    }
    // A snapshot forgotten while it was being checked (a forget and a prune beside this check) is no damage.
    if (found.length > 0 && (await gone(repo, name))) notes.push(`snapshot ${name} was forgotten while it was being checked`);
    else errors.push(...found);
  }

  let packsRead = 0;
  let blobsVerified = 0;
  for (const [store, stored] of storedOn) {
    const toRead = choosePacks([...stored.keys()].filter((id) => repo.index.hasPack(Buffer.from(id, 'hex'))), options.readData);
    for (const [i, id] of toRead.entries()) {
      say(`reading pack ${i + 1}/${toRead.length}${repo.stores.length > 1 ? ` of ${store.location}` : ''}`);
      const packErrors: string[] = [];
      blobsVerified += await verifyPack(repo, store, id, stored.get(id)!, packErrors);
      if (packErrors.length > 0 && records.isDoomed(Buffer.from(id, 'hex')) && !(await store.stat(packName(id)))) notes.push(`pack ${packName(id)} was deleted by a prune while it was being read`);
      else errors.push(...packErrors);
      packsRead++;
    }
  }
  const packs = Math.max(0, ...[...storedOn.values()].map((stored) => stored.size));
  return { errors, notes, snapshots: snapshotNames.size, trees: treeHeights.size, packs, packsRead, blobsVerified };
}

const KINDS: Record<string, string> = { index: 'index file', deletions: 'deletion record', writers: 'writer marker', snapshots: 'snapshot', keys: 'key file', data: 'pack' };

/** 'index file', 'deletion record'… for a name such as 'index/ab12…'. */
function kindOf(name: string): string {
  return KINDS[name.slice(0, name.indexOf('/'))] ?? 'object';
}

/** Whether the object is on no replica any more. */
async function gone(repo: Repository, name: string): Promise<boolean> {
  for (const store of repo.stores) if (await store.stat(name).catch(() => true)) return false;
  return true;
}

/** Every key file must decode (the passphrase opened one of them; the others may be damaged unseen). */
async function checkKeys(repo: Repository, errors: string[]): Promise<void> {
  for (const store of repo.stores) {
    for await (const o of store.list('keys')) {
      try {
        const bytes = await store.get(o.name);
        if (contentId(bytes) !== idOf(o.name)) throw new Error('its bytes do not match its name (damaged)');
        decodeKeyFile(bytes, o.name);
      } catch (err) {
        errors.push(`key file ${o.name}${repo.stores.length > 1 ? ` on ${store.location}` : ''}: ${(err as Error).message}`);
      }
    }
  }
}

async function listPacks(store: Store): Promise<Map<string, number>> {
  const packs = new Map<string, number>();
  for await (const o of store.list('data')) packs.set(idOf(o.name), o.size);
  return packs;
}

/**
 * Every tree below `id` (each once) reads, and every chunk it names is an indexed data blob. `heights`
 * remembers how many levels each checked tree spans, so a tree reached again (from another snapshot,
 * perhaps much deeper) is not read twice but still counts towards the depth limit: the verdict must
 * not depend on the order snapshots are listed in. A chunk in a pack that a prune deleted
 * (`doomedMissing`: marked for deletion and gone) is lost.
 */
async function checkTree(repo: Repository, id: Buffer, where: string, heights: Map<string, number>, errors: string[], doomedMissing: ReadonlySet<string>): Promise<void> {
  const breather = new Breather();
  const stack: { hex: string; nodes: TreeNode[]; next: number; where: string; below: number }[] = [];
  const enter = async (tree: Buffer, at: string): Promise<number> => {
    const hex = tree.toString('hex');
    const known = heights.get(hex);
    if (stack.length + (known ?? 1) > MAX_TREE_DEPTH) {
      errors.push(tooDeep(at).message);
      return 0;
    }
    if (known !== undefined) return known;
    try {
      stack.push({ hex, nodes: await repo.loadTree(tree), next: 0, where: at, below: 0 });
    } catch (err) {
      heights.set(hex, 1);
      errors.push(`${at}: tree ${hex.slice(0, 16)}: ${(err as Error).message}`);
    }
    return 0;
  };
  await enter(id, where);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const node = top.nodes[top.next++];
    if (!node) {
      stack.pop();
      heights.set(top.hex, top.below + 1);
      const parent = stack[stack.length - 1];
      if (parent) parent.below = Math.max(parent.below, top.below + 1);
      continue;
    }
    await breather.pause();
    const path = `${top.where}/${node.name.toString()}`;
    if (node.type === NodeType.File) {
      for (const chunk of contentIds(node)) {
        const loc = repo.index.lookup(chunk);
        if (!loc) errors.push(`${path}: chunk ${chunk.toString('hex').slice(0, 16)} is not in the index`);
        else if (loc.type !== BlobType.Data) errors.push(`${path}: chunk ${chunk.toString('hex').slice(0, 16)} is indexed as a ${blobTypeName(loc.type)} blob`);
        else if (doomedMissing.has(loc.packId)) errors.push(`${path}: chunk ${chunk.toString('hex').slice(0, 16)} is in pack ${packName(loc.packId)}, which a prune deleted`);
      }
    } else if (node.type === NodeType.Dir && node.subtree) {
      top.below = Math.max(top.below, await enter(node.subtree, path));
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

/** Pieces of a pack read at once while verifying it (a blob bigger than this is read alone). */
const VERIFY_SPAN = 16 * 1024 * 1024;

/**
 * Reads one pack and verifies its header, its agreement with the index, every blob and its name (the
 * SHA-256 of all its bytes). It is read in ranges of at most VERIFY_SPAN, so a pack that claims to be
 * huge costs no more memory than a normal one.
 */
async function verifyPack(repo: Repository, store: Store, id: string, size: number, errors: string[]): Promise<number> {
  const name = packName(id);
  const where = repo.stores.length > 1 ? ` on ${store.location}` : '';
  let header;
  try {
    header = await readPackHeader(store, name, size, repo.keys.dataKey);
  } catch (err) {
    errors.push(`pack ${name}${where}: ${(err as Error).message}`);
    return 0;
  }
  const key = packKey(repo.keys.dataKey, header.salt);
  const hash = crypto.createHash('sha256');
  let verified = 0;
  let next = 0;
  try {
    while (next < header.entries.length) {
      const first = header.entries[next]!;
      let last = next;
      while (last + 1 < header.entries.length && header.entries[last + 1]!.offset + header.entries[last + 1]!.length - first.offset <= VERIFY_SPAN) last++;
      const end = header.entries[last]!.offset + header.entries[last]!.length;
      const bytes = await store.get(name, { offset: first.offset, length: end - first.offset });
      hash.update(bytes);
      for (let i = next; i <= last; i++) {
        if (verifyBlob(repo, key, id, i, header.entries[i]!, bytes.subarray(header.entries[i]!.offset - first.offset), `pack ${name}${where}`, errors)) verified++;
      }
      next = last + 1;
    }
    const blobsEnd = header.entries.length > 0 ? header.entries.at(-1)!.offset + header.entries.at(-1)!.length : 0;
    hash.update(await store.get(name, { offset: blobsEnd, length: size - blobsEnd }));
    // A wrong hash is reported after the blobs, which name the damaged one.
    if (hash.digest('hex') !== id) errors.push(`pack ${name}${where}: its bytes do not match its name (damaged)`);
  } catch (err) {
    errors.push(`pack ${name}${where}: ${(err as Error).message}`);
  }
  return verified;
}

/** One blob of a pack (`sealed` starts with it): decrypts, decompresses, matches its id and the index. */
function verifyBlob(repo: Repository, key: KeyObject, packId: string, i: number, entry: PackEntry, sealed: Buffer, where: string, errors: string[]): boolean {
  const what = `${where}: blob ${i} (${blobTypeName(entry.type)} ${toHex(entry.id).slice(0, 16)})`;
  const indexed = repo.index.lookup(entry.id);
  if (indexed && indexed.packId === packId && (indexed.offset !== entry.offset || indexed.length !== entry.length)) {
    errors.push(`${what}: the index places it elsewhere in the pack`);
  }
  try {
    const raw = decompressPayload(openBlob(key, entry.offset, entry.type, entry.id, sealed.subarray(0, entry.length), what), entry.rawLength, what);
    if (!blobId(repo.idKey, raw).equals(entry.id)) throw new Error(`${what} does not match its id`);
    return true;
  } catch (err) {
    errors.push((err as Error).message);
    return false;
  }
}
