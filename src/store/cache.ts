// A local copy of what commands read again and again from a remote repository: index files, snapshots
// and packs of directory trees (restic and Kopia keep the same), under <root>/<repository id>/ with the
// object names of layout.ts. Every object is write-once and named by the SHA-256 of its bytes, so a
// cached copy is either exactly the object or damaged: each read checks the hash, and a copy that fails
// is deleted and read from the store again. The cache never says what exists: listings go to the store,
// and after a complete listing the copies of objects it no longer holds are deleted, as are the copies
// of packs no index lists once a repository has loaded its index (pruneCopies). Several processes
// may share one cache: files appear by rename, whole or not at all.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { contentId } from '../format/crypto.ts';
import { decodeConfig } from '../format/config.ts';
import { maxPackBytesFor } from '../format/pack.ts';
import { CONFIG_NAME, checkObjectName, maxObjectSize } from './layout.ts';
import { idOf, type ByteRange, type ObjectHint, type ObjectInfo, type PutOptions, type Store } from './store.ts';

/** Folders whose objects are cached whenever they are read or written whole. */
const ALWAYS = new Set(['index', 'snapshots']);
/** Packs are cached only when the caller says they hold trees (ObjectHint.metadata). */
const PACKS = 'data';

/** The tag that tells backup tools (Coffer's --exclude-caches too) to leave the directory out. */
const CACHEDIR_TAG = 'Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by Coffer.\n# For information about cache directory tags, see https://bford.info/cachedir/\n';

/** Copies younger than this are kept by the pruning after a listing: another process may have just added an object the listing began too early to see. */
const PRUNE_GRACE_MS = 60_000;

/** `$XDG_CACHE_HOME/coffer`, else `~/.cache/coffer` (a relative XDG_CACHE_HOME is ignored, as the spec says). */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'coffer');
}

function folderOf(name: string): string {
  return name.slice(0, Math.max(0, name.indexOf('/')));
}

/** Whether a copy of `name` may be in the cache (any pack may: a tree pack read or written before). */
function mayBeCached(name: string): boolean {
  const dir = folderOf(name);
  return ALWAYS.has(dir) || dir === PACKS;
}

/** Whether `name` is worth a copy. */
function cacheable(name: string, hint: ObjectHint | undefined): boolean {
  const dir = folderOf(name);
  return ALWAYS.has(dir) || (dir === PACKS && hint?.metadata === true);
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export interface CacheEvents {
  /** A cached copy did not match its name and was read from the store again. */
  onDamaged?(name: string, reason: string): void;
  /** The cache directory cannot be used (read-only, full): the store is used directly from then on. */
  onUnusable?(reason: string): void;
}

export class CacheStore implements Store {
  readonly location: string;
  private readonly inner: Store;
  private readonly root: string;
  private readonly events: CacheEvents;
  /** `<root>/<repository id>` once the config has been seen; undefined while it cannot be known. */
  private dir?: Promise<string | undefined>;
  private unusable = false;

  constructor(inner: Store, root: string, events: CacheEvents = {}) {
    this.inner = inner;
    this.location = inner.location;
    this.root = root;
    this.events = events;
  }

  /** The repository's folder in the cache, from the config (read through this store first anyway). */
  private repoDir(): Promise<string | undefined> {
    this.dir ??= this.inner.get(CONFIG_NAME).then(
      (bytes) => this.dirFor(bytes),
      () => {
        this.dir = undefined;
        return undefined;
      },
    );
    return this.dir;
  }

  /** The id is checked by decodeConfig (64 hex digits) before it becomes a directory name. */
  private dirFor(config: Buffer): string | undefined {
    try {
      return path.join(this.root, decodeConfig(config).id);
    } catch {
      return undefined;
    }
  }

  private disable(err: unknown): void {
    if (this.unusable) return;
    this.unusable = true;
    this.events.onUnusable?.(`the cache in ${this.root} cannot be used (${(err as Error).message}); reading from ${this.location} directly`);
  }

  async get(name: string, range?: ByteRange, hint?: ObjectHint): Promise<Buffer> {
    if (name === CONFIG_NAME && !range) {
      const bytes = await this.inner.get(name);
      this.dir ??= Promise.resolve(this.dirFor(bytes));
      return bytes;
    }
    // A range is served from a copy only for a tree pack, which is read from its start to its last blob.
    const treeRange = range !== undefined && range.offset === 0 && hint?.metadata === true && folderOf(name) === PACKS;
    if ((range && !treeRange) || this.unusable || !mayBeCached(name)) return this.inner.get(name, range, hint);
    checkObjectName(name, `reading ${name} from the cache of ${this.location}`);
    const dir = await this.repoDir();
    if (!dir) return this.inner.get(name, range, hint);
    const file = path.join(dir, name);
    const cached = await this.readCopy(name, file);
    if (cached) {
      if (!range) return cached;
      // A range past the end gets the store's own answer.
      if (range.length <= cached.length) return cached.subarray(0, range.length);
      return this.inner.get(name, range, hint);
    }
    if (!range) {
      const bytes = await this.inner.get(name, undefined, hint);
      if (cacheable(name, hint)) await this.keep(dir, file, name, bytes);
      return bytes;
    }
    // The first read of a tree pack: the whole pack (one more request, for its size), unless it is
    // bigger than a pack whose blobs end there can be (the caller bounds what it reads; so does this).
    const info = await this.inner.stat(name);
    if (!info || info.size < range.length || info.size > maxPackBytesFor(range.length)) return this.inner.get(name, range, hint);
    const bytes = await this.inner.get(name, undefined, hint);
    if (bytes.length < range.length) return this.inner.get(name, range, hint);
    await this.keep(dir, file, name, bytes);
    return bytes.subarray(0, range.length);
  }

  /** The cached copy if there is one and it is whole; a damaged one is deleted. */
  private async readCopy(name: string, file: string): Promise<Buffer | undefined> {
    let bytes: Buffer;
    try {
      const handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const { size } = await handle.stat();
        // Never allocated beyond what such an object may be: a damaged file could claim anything.
        if (size > maxObjectSize(name)) bytes = Buffer.alloc(0);
        else bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (!isMissing(err)) this.disable(err);
      return undefined;
    }
    if (contentId(bytes) === idOf(name)) return bytes;
    this.events.onDamaged?.(name, `the cached copy in ${file} does not match its name`);
    await fs.promises.rm(file, { force: true }).catch((err: unknown) => this.disable(err));
    return undefined;
  }

  /**
   * Stores a copy: written to a file of its own, then renamed into place, so readers never see half of
   * one. Bytes that do not match their name (damaged on the way) are not kept.
   */
  private async keep(dir: string, file: string, name: string, bytes: Uint8Array): Promise<void> {
    if (this.unusable || contentId(bytes) !== idOf(name)) return;
    const tmp = path.join(dir, 'tmp', `${crypto.randomBytes(12).toString('hex')}.tmp`);
    try {
      await this.prepare(dir);
      await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await fs.promises.writeFile(tmp, bytes, { mode: 0o600, flag: 'wx' });
      await fs.promises.rename(tmp, file);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true }).catch(() => {});
      this.disable(err);
    }
  }

  private prepared?: Promise<void>;

  /** The cache root with its CACHEDIR.TAG, and the repository's tmp folder; once per process. */
  private prepare(dir: string): Promise<void> {
    this.prepared ??= (async () => {
      await fs.promises.mkdir(path.join(dir, 'tmp'), { recursive: true, mode: 0o700 });
      await fs.promises.writeFile(path.join(this.root, 'CACHEDIR.TAG'), CACHEDIR_TAG, { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    })();
    this.prepared.catch(() => (this.prepared = undefined));
    return this.prepared;
  }

  /** Written to the store first; cached only once the store has it, so the cache never holds what the store lacks. */
  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    const stored = await this.inner.put(name, data, options);
    if (cacheable(name, options) && !this.unusable) {
      const dir = await this.repoDir();
      if (dir) await this.keep(dir, path.join(dir, name), name, data);
    }
    return stored;
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(name);
  }

  /** The store's listing; once it is complete, copies of objects of `dir` it did not list are deleted. */
  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const started = Date.now();
    const listed = new Set<string>();
    for await (const info of this.inner.list(dir)) {
      listed.add(info.name);
      yield info;
    }
    if (ALWAYS.has(dir) || dir === PACKS) await this.dropCopies(dir, (name) => listed.has(name), started);
  }

  /** Deletes the copies in `folder` that `keep` refuses, unless they were written after `started` less the grace. */
  private async dropCopies(folder: string, keep: (name: string) => boolean, started: number): Promise<void> {
    if (this.unusable) return;
    const dir = await this.repoDir();
    if (!dir) return;
    try {
      for (const name of await cachedNames(dir, folder)) {
        if (keep(name)) continue;
        const file = path.join(dir, name);
        const stat = await fs.promises.lstat(file).catch(() => undefined);
        if (stat && stat.mtimeMs < started - PRUNE_GRACE_MS) await fs.promises.rm(file, { force: true });
      }
    } catch (err) {
      if (!isMissing(err)) this.disable(err);
    }
  }

  /** Deleted from the store, then from the cache. */
  async delete(name: string): Promise<void> {
    await this.inner.delete(name);
    if (this.unusable || !mayBeCached(name)) return;
    const dir = await this.repoDir();
    if (dir) await fs.promises.rm(path.join(dir, name), { force: true }).catch((err: unknown) => this.disable(err));
  }

  /** Nothing unfinished is ever cached: passed straight on (prune's clean-up of S3 multipart uploads). */
  async removeIncomplete(before: number): Promise<number> {
    return (await this.inner.removeIncomplete?.(before)) ?? 0;
  }

  /** Drops the copies of packs no index lists (another machine pruned them); young ones may be another process's new packs. */
  async pruneCopies(isIndexed: (packName: string) => boolean): Promise<void> {
    await this.inner.pruneCopies?.(isIndexed);
    await this.dropCopies(PACKS, isIndexed, Date.now());
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Object names cached in `folder` (packs sit one level deeper, in data/<2 hex>/). */
async function cachedNames(dir: string, folder: string): Promise<string[]> {
  const entries = await fs.promises.readdir(path.join(dir, folder), { withFileTypes: true }).catch((err: unknown) => {
    if (isMissing(err)) return [];
    throw err;
  });
  if (folder !== PACKS) return entries.filter((e) => e.isFile()).map((e) => `${folder}/${e.name}`);
  const names: string[] = [];
  for (const sub of entries) {
    if (!sub.isDirectory()) continue;
    for (const e of await fs.promises.readdir(path.join(dir, folder, sub.name), { withFileTypes: true })) if (e.isFile()) names.push(`${folder}/${sub.name}/${e.name}`);
  }
  return names;
}
