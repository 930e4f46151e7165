// A repository on one or more stores that are byte-identical replicas: same config, keys and object
// names. Reads go to the first replica that answers with an object that verifies, and fall back to the
// next one on a missing or damaged object.
import type { KeyObject } from 'node:crypto';
import os from 'node:os';
import { FormatError } from '../format/bytes.ts';
import { decompressPayload, compressPayload } from '../format/compression.ts';
import { canonicalJson, decodeConfig, encodeConfig, newConfig, verifyConfig, type RepoConfig } from '../format/config.ts';
import { blobId, contentId, generateMasterKeys, openObject, sealObject, secretKey, type MasterKeys } from '../format/crypto.ts';
import { decodeIndex, encodeIndex, IndexEncoder, scanIndex, type IndexedPack, type IndexVisitor } from '../format/index-file.ts';
import { encodeKeyFile, wrapKeys } from '../format/keyfile.ts';
import { MAX_SNAPSHOT_PLAIN_BYTES, maxIndexPlainBytes } from '../format/limits.ts';
import { BlobType, openBlob, packKey } from '../format/pack.ts';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../format/snapshot.ts';
import { decodeTree, type TreeNode } from '../format/tree.ts';
import { StoreError, idOf, packName, type ByteRange, type ObjectHint, type Store } from '../store/store.ts';
import { BlobIndex, type BlobLocation } from './blob-index.ts';
import { loadDeletionRecords, type DeletionRecords } from './deletion-records.ts';
import { NoRepositoryError, RepositoryError, WrongPassphraseError } from './errors.ts';
import { unlock } from './unlock.ts';
import { PackCache } from './pack-cache.ts';

const PACK_KEY_CACHE = 4096;
const TREE_PACK_CACHE = 64 * 1024 * 1024;
/** Tree packs up to this size are read whole into the cache (they close at 16 MiB). */
const TREE_PACK_READ = 24 * 1024 * 1024;

export { NoRepositoryError, RepositoryError, WrongPassphraseError };

export interface StoredSnapshot {
  readonly id: string;
  readonly snapshot: Snapshot;
}

/** Something went wrong on one replica but another one served the read. */
export interface FallbackEvent {
  readonly name: string;
  readonly failed: string;
  readonly reason: string;
  readonly servedBy: string;
}

export interface OpenOptions {
  /** The key file that opened the repository with this id last time (remembered outside the repository). */
  readonly keyHint?: (repoId: string) => string | undefined;
  /** Told about each key file that cannot be read (it is skipped). */
  readonly onDamaged?: (name: string, reason: string) => void;
}

/** A replica that could not be opened (offline, no config): left out, reported. */
/** A repository's master keys already unwrapped (a scaled-out backup's coordinator hands them to its worker processes). */
export interface UnlockedKeys {
  readonly keys: MasterKeys;
  /** Id of the key file that the passphrase opened. */
  readonly keyId: string;
}

export interface UnavailableReplica {
  readonly store: Store;
  readonly error: Error;
}

export function whoAmI(): { host: string; user: string } {
  return { host: os.hostname(), user: os.userInfo().username };
}

/** The store's config, or a RepositoryError saying that it is not a repository. */
export async function readConfig(store: Store): Promise<RepoConfig> {
  let bytes: Buffer;
  try {
    bytes = await store.get('config');
  } catch (err) {
    if (err instanceof StoreError && err.kind === 'not-found') {
      throw new NoRepositoryError(`${store.location} is not a Coffer repository (no config); create one with coffer init`);
    }
    throw err;
  }
  return decodeConfig(bytes);
}

/** Creates a repository on every store (all must be empty) with one key for `passphrase`. */
export async function initRepository(stores: readonly Store[], passphrase: string): Promise<RepoConfig> {
  for (const store of stores) {
    if (await store.stat('config')) throw new RepositoryError(`${store.location} already holds a repository`);
  }
  const keys = generateMasterKeys();
  const config = newConfig(keys.dataKey);
  const keyFile = encodeKeyFile(await wrapKeys(keys, passphrase, whoAmI()));
  const configBytes = encodeConfig(config);
  for (const store of stores) {
    // The key goes first: a config without a key would be an unusable repository.
    await store.put(`keys/${contentId(keyFile)}`, keyFile);
    await store.put('config', configBytes);
  }
  return config;
}

/**
 * Completes a creation cut short on some stores (a pause or a crash between destinations): they get
 * the key files, then the config, of a store that holds them. A backup then copies them everything else
 * before it commits a snapshot there (invariant 3), as for a replica that lags.
 */
export async function completeCreation(from: Store, stores: readonly Store[]): Promise<void> {
  const keys: string[] = [];
  for await (const o of from.list('keys')) keys.push(o.name);
  const config = await from.get('config');
  for (const store of stores) {
    for (const name of keys) await store.put(name, await from.get(name));
    await store.put('config', config);
  }
}

export class Repository {
  readonly config: RepoConfig;
  readonly keys: MasterKeys;
  /** The id key, ready for HMAC. */
  readonly idKey: KeyObject;
  /** Id of the key file that the passphrase opened. */
  readonly keyId: string;
  /** Replicas that answered, fastest first: reads try them in this order. */
  readonly stores: readonly Store[];
  readonly unavailable: readonly UnavailableReplica[];
  /** Where each blob is; a writer leaves out the packs a deletion record dooms (see heldBack). */
  readonly index = new BlobIndex();
  /**
   * Blobs a writer found only in doomed packs (FORMAT.md 12.3): not used to deduplicate, so the writer
   * stores them again, but still readable (a parent's trees may be there).
   */
  readonly heldBack = new BlobIndex();
  private readonly packKeys = new Map<string, KeyObject>();
  private readonly treePacks = new PackCache(TREE_PACK_CACHE);
  private records?: Promise<DeletionRecords>;
  /** The index files loaded so far (none before loadIndex), and the deletion records that chose where their packs went. */
  private indexFilesLoaded?: Set<string>;
  private holdBack?: { isDoomed(packId: Uint8Array): boolean };
  /** A snapshot was read after the index was loaded: it may be newer than every index file loaded. */
  private indexMayLag = false;
  /** The last catch-up with index files written since (concurrent reads wait for the same one). */
  private caughtUp?: Promise<void>;
  onFallback?: (event: FallbackEvent) => void;
  /**
   * A snapshot or index file that cannot be read on any replica is skipped and reported here. The packs
   * of a skipped index file look unindexed, so the next backup re-indexes them from their headers.
   */
  onDamaged?: (name: string, reason: string) => void;

  private constructor(config: RepoConfig, keys: MasterKeys, keyId: string, stores: readonly Store[], unavailable: readonly UnavailableReplica[]) {
    this.config = config;
    this.unavailable = unavailable;
    this.keys = keys;
    this.idKey = secretKey(keys.idKey);
    this.keyId = keyId;
    this.stores = stores;
  }

  /**
   * Opens the repository with the passphrase. Every store must be a replica of the same repository; one
   * that cannot be reached is left out (see `unavailable`) as long as another one answers. The others
   * are ordered by how fast they answered (replicas about as fast keep their order). Given keys already
   * unwrapped instead of the passphrase, no key derivation is done; the config's authentication check
   * still tells whether they are this repository's.
   */
  static async open(stores: readonly Store[], passphrase: string | UnlockedKeys, options: OpenOptions = {}): Promise<Repository> {
    if (stores.length === 0) throw new RepositoryError('no repository given: use --repo or COFFER_REPO');
    const answers = await Promise.all(
      stores.map(async (store) => {
        const started = performance.now();
        try {
          const config = await readConfig(store);
          return { store, config, ms: performance.now() - started };
        } catch (err) {
          return { store, error: err as Error, ms: Infinity };
        }
      }),
    );
    // Replicas keep the order they were given in unless one answers clearly faster (a local disk before a bucket).
    const speedClass = (ms: number): number => Math.floor(Math.log2(1 + ms / 25));
    const reachable = answers.filter((a) => a.config).sort((a, b) => speedClass(a.ms) - speedClass(b.ms));
    const first = reachable[0];
    if (!first) throw answers[0]!.error;
    for (const a of reachable) {
      if (a.config!.id !== first.config!.id) {
        throw new RepositoryError(`${a.store.location} is a different repository than ${first.store.location} (ids ${a.config!.id.slice(0, 8)} and ${first.config!.id.slice(0, 8)})`);
      }
      // Replicas hold byte-identical configs: one that differs was changed behind our back.
      if (canonicalJson(a.config) !== canonicalJson(first.config)) {
        throw new RepositoryError(`the config of ${a.store.location} differs from the one of ${first.store.location}; the repository may have been tampered with`);
      }
    }
    const unavailable = answers.filter((a) => a.error).map((a) => ({ store: a.store, error: a.error! }));
    const { keys, keyId } =
      typeof passphrase === 'string' ? await unlock(first.store, passphrase, { preferKey: options.keyHint?.(first.config!.id), onDamaged: options.onDamaged }) : passphrase;
    if (verifyConfig(first.config!, keys.dataKey) === 'tampered') {
      throw new RepositoryError(
        `the config of ${first.store.location} fails its authentication check: the repository may have been tampered with; do not back up to it until you know why`,
      );
    }
    return new Repository(first.config!, keys, keyId, reachable.map((a) => a.store), unavailable);
  }

  /**
   * Reads `name` from the first replica where it exists and passes `decode`; falls back to the next
   * replica on a missing or damaged object, telling onFallback.
   */
  async read<T>(name: string, decode: (bytes: Buffer) => T, range?: ByteRange, hint?: ObjectHint): Promise<T> {
    let firstError: unknown;
    const failures: string[] = [];
    for (const store of this.stores) {
      try {
        const value = decode(await store.get(name, range, hint));
        for (const failed of failures) this.onFallback?.({ name, failed, reason: describe(firstError), servedBy: store.location });
        return value;
      } catch (err) {
        firstError ??= err;
        failures.push(store.location);
      }
    }
    throw firstError;
  }

  /**
   * Loads every index file of every replica. `holdBack` (a writer's deletion records) sends the packs
   * they doom to `heldBack`. An index file that vanishes between listing and reading was replaced by a
   * prune, which wrote its content to a new file first: the index is listed again for it.
   */
  async loadIndex({ holdBack }: { holdBack?: { isDoomed(packId: Uint8Array): boolean } } = {}): Promise<void> {
    this.holdBack = holdBack;
    this.indexMayLag = false;
    this.indexFilesLoaded = new Set();
    await this.loadIndexFiles(this.indexFilesLoaded);
  }

  /**
   * Loads the index files written since the index was loaded, once after a snapshot was read: a backup
   * writes its index files before its snapshot, so a snapshot listed after the index was loaded (a
   * backup committing in between) has its blobs in them. True once a catch-up has run.
   */
  private async catchUpIndex(): Promise<boolean> {
    if (this.indexMayLag) {
      this.indexMayLag = false;
      this.caughtUp = this.loadIndexFiles(this.indexFilesLoaded!);
    }
    if (!this.caughtUp) return false;
    await this.caughtUp;
    return true;
  }

  /** Loads the index files not in `loaded`, adding each to it. */
  private async loadIndexFiles(loaded: Set<string>): Promise<void> {
    const holdBack = this.holdBack;
    for (let round = 0; round < 5; round++) {
      const names = new Set<string>();
      for (const store of this.stores) for await (const obj of store.list('index')) if (!loaded.has(obj.name)) names.add(obj.name);
      let vanished = false;
      for (const name of names) {
        loaded.add(name);
        try {
          await this.scanIndexFile(name, (packId) => (holdBack?.isDoomed(packId) ? this.heldBack : this.index));
        } catch (err) {
          if (err instanceof StoreError && err.kind === 'not-found') vanished = true;
          else this.onDamaged?.(name, describe(err));
        }
      }
      if (!vanished) return this.pruneCachedCopies();
    }
  }

  /** Copies of packs that no index lists go from the stores' local caches, now that the whole index is known. */
  private async pruneCachedCopies(): Promise<void> {
    const isIndexed = (name: string): boolean => {
      const id = Buffer.from(idOf(name), 'hex');
      return this.index.hasPack(id) || this.heldBack.hasPack(id);
    };
    await Promise.all(this.stores.map((store) => store.pruneCopies?.(isIndexed)));
  }

  /** A blob's location, doomed packs included. */
  locate(id: Uint8Array): BlobLocation | undefined {
    return this.index.lookup(id) ?? this.heldBack.lookup(id);
  }

  readIndexFile(name: string): Promise<IndexedPack[]> {
    return this.read(name, (bytes) => decodeIndex(this.openIndexFile(name, bytes), name));
  }

  /** An index file's plaintext, after checking its name and decrypting it. */
  private openIndexFile(name: string, bytes: Buffer): Buffer {
    if (contentId(bytes) !== idOf(name)) throw new FormatError(`${name} does not match its name (damaged)`);
    const framed = openObject(this.keys.dataKey, 'index', bytes, name);
    return decompressPayload(framed, { atMost: maxIndexPlainBytes(bytes.length) }, name);
  }

  /**
   * Loads an index file straight into a typed-array index, without an object per blob: `into` chooses
   * the index for each pack (the main one, or held-back); `onPack` hears of each pack listed.
   */
  scanIndexFile(name: string, into: (packId: Uint8Array) => BlobIndex, onPack?: (id: Uint8Array, blobs: number) => void): Promise<void> {
    let index = this.index;
    let pack = { packNo: 0, fresh: false };
    return this.visitIndexFile(name, {
      pack: (id, salt, blobs) => {
        index = into(id);
        pack = index.openPack(id, salt);
        onPack?.(id, blobs);
      },
      blob: (type, id, offset, length, rawLength) => index.addEntry(pack.packNo, pack.fresh, type, id, offset, length, rawLength),
    });
  }

  /** Reads an index file entry by entry (see scanIndex): what it lists, without an object per blob. */
  visitIndexFile(name: string, visitor: IndexVisitor): Promise<void> {
    return this.read(name, (bytes) => scanIndex(this.openIndexFile(name, bytes), name, visitor));
  }

  sealIndex(packs: readonly IndexedPack[] | IndexEncoder): { name: string; bytes: Buffer } {
    const plain = packs instanceof IndexEncoder ? packs.finish() : encodeIndex(packs);
    const bytes = sealObject(this.keys.dataKey, 'index', compressPayload(plain));
    return { name: `index/${contentId(bytes)}`, bytes };
  }

  sealSnapshot(snapshot: Snapshot): { name: string; bytes: Buffer } {
    const bytes = sealObject(this.keys.dataKey, 'snapshot', compressPayload(encodeSnapshot(snapshot)));
    return { name: `snapshots/${contentId(bytes)}`, bytes };
  }

  /** Reads a blob, decrypts, decompresses and checks its id. */
  /** Pack keys by pack id: deriving one (HKDF) costs more than decrypting a small tree. */
  private packKeyFor(packId: string, salt: Buffer): KeyObject {
    let key = this.packKeys.get(packId);
    if (!key) {
      if (this.packKeys.size >= PACK_KEY_CACHE) this.packKeys.clear();
      key = packKey(this.keys.dataKey, salt);
      this.packKeys.set(packId, key);
    }
    return key;
  }

  /** Lets go of the cached tree packs (up to 64 MiB) once a walk is over and nothing else will read them. */
  dropTreeCache(): void {
    this.treePacks.clear();
  }

  /**
   * Reads a blob, decrypts, decompresses and checks its id. Tree blobs come from whole cached packs;
   * if that copy is damaged, the blob is read again replica by replica.
   */
  async readBlob(id: Uint8Array, expectedType?: BlobType): Promise<Buffer> {
    let loc = this.locate(id);
    if (!loc && (await this.catchUpIndex())) loc = this.locate(id);
    const hex = Buffer.from(id).toString('hex');
    if (!loc) throw new RepositoryError(`blob ${hex} is not in the index; run coffer check`);
    if (expectedType !== undefined && loc.type !== expectedType) throw new RepositoryError(`blob ${hex} has the wrong type; run coffer check`);
    const name = packName(loc.packId);
    const key = this.packKeyFor(loc.packId, loc.salt);
    const decode = (sealed: Buffer): Buffer => {
      const what = `blob ${hex.slice(0, 16)} in pack ${name}`;
      const raw = decompressPayload(openBlob(key, loc.offset, loc.type, id, sealed, what), loc.rawLength, what);
      if (!blobId(this.idKey, raw).equals(id)) throw new FormatError(`${what} does not match its id (damaged)`);
      return raw;
    };
    // The blobs of a tree pack are read in one go and kept (a walk reads many trees from few packs),
    // but never more than a small pack holds: a pack is only read whole up to its last indexed blob.
    if (loc.type === BlobType.Tree && loc.packExtent <= TREE_PACK_READ) {
      try {
        const pack = await this.treePacks.get(name, () => this.read(name, (bytes) => bytes, { offset: 0, length: loc.packExtent }, { metadata: true }));
        if (loc.offset + loc.length <= pack.length) return decode(pack.subarray(loc.offset, loc.offset + loc.length));
      } catch {
        // Fall through to the blob alone, replica by replica.
      }
      this.treePacks.forget(name);
    }
    return this.read(name, decode, { offset: loc.offset, length: loc.length });
  }

  async loadTree(id: Uint8Array): Promise<TreeNode[]> {
    return decodeTree(await this.readBlob(id, BlobType.Tree));
  }

  /** The deletion records of every replica, read once per process (a writer must see them before it loads the index). */
  deletionRecords(): Promise<DeletionRecords> {
    this.records ??= loadDeletionRecords(this);
    this.records.catch(() => (this.records = undefined));
    return this.records;
  }

  /** Forgets the records read so far (after writing one). */
  reloadDeletionRecords(): void {
    this.records = undefined;
  }

  /** Every snapshot on any replica, oldest first, except those a deletion record forgot (a late replica may still hold them). */
  async listSnapshots(): Promise<StoredSnapshot[]> {
    const names = new Set<string>();
    for (const store of this.stores) for await (const obj of store.list('snapshots')) names.add(obj.name);
    const { forgotten } = await this.deletionRecords();
    for (const name of names) if (forgotten.has(idOf(name))) names.delete(name);
    const loaded = await Promise.all(
      [...names].map(async (name) => {
        try {
          return { id: idOf(name), snapshot: await this.loadSnapshot(name) };
        } catch (err) {
          this.onDamaged?.(name, describe(err));
          return undefined;
        }
      }),
    );
    const result = loaded.filter((s): s is StoredSnapshot => s !== undefined);
    // A rewrite interrupted between writing the new snapshot and deleting the old one: the new one counts.
    const replaced = new Set(result.map((s) => s.snapshot.replaces));
    return result.filter((s) => !replaced.has(s.id)).sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time) || a.id.localeCompare(b.id));
  }

  loadSnapshot(name: string): Promise<Snapshot> {
    if (this.indexFilesLoaded) this.indexMayLag = true;
    return this.read(name, (bytes) => {
      if (contentId(bytes) !== idOf(name)) throw new FormatError(`${name} does not match its name (damaged)`);
      const framed = openObject(this.keys.dataKey, 'snapshot', bytes, name);
      return decodeSnapshot(decompressPayload(framed, { atMost: MAX_SNAPSHOT_PLAIN_BYTES }, name), name);
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.stores, ...this.unavailable.map((u) => u.store)].map((s) => s.close()));
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
