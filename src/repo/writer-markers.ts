// Writer markers (docs/FORMAT.md 12.1): a running process tells prunes that it exists, by a marker on
// each replica that it rewrites every heartbeat. A marker blocks no one. Ages are measured with the
// storage's clock (object modification times), so host clocks never have to agree. A writer whose
// heartbeats stopped for long enough that a prune may have taken it for gone (fence) checks, before it
// commits a snapshot, that no deletion record appeared meanwhile.
import crypto from 'node:crypto';
import { FormatError } from '../format/bytes.ts';
import { decompressPayload, compressPayload } from '../format/compression.ts';
import { contentId, openObject, sealObject } from '../format/crypto.ts';
import { MAX_WRITER_MARKER_BYTES } from '../format/limits.ts';
import { decodeWriterMarker, encodeWriterMarker, type WriterMarker } from '../format/writer-marker.ts';
import { WRITERS_DIR } from '../store/layout.ts';
import { StoreError, idOf, type Store } from '../store/store.ts';
import { processAlive, processScope } from './process.ts';
import type { DeletionRecords } from './deletion-records.ts';
import { whoAmI, type Repository } from './repository.ts';

export interface MarkerTiming {
  /** A live process rewrites its marker this often. */
  readonly heartbeatMs: number;
  /** Two heartbeats this far apart (storage time) mean a prune may have taken the process for gone. */
  readonly fenceMs: number;
  /** A marker not rewritten for this long (storage time) is expired: its process is taken for gone. */
  readonly expiryMs: number;
}

export const MARKER_TIMING: MarkerTiming = { heartbeatMs: 2 * 60_000, fenceMs: 30 * 60_000, expiryMs: 2 * 60 * 60_000 };

export type Liveness = 'live' | 'expired' | 'dead';

/** One process's marker as seen on one store. */
export interface ObservedWriter {
  readonly marker: WriterMarker;
  readonly store: Store;
  /** Every version found (normally one; two between a rewrite and the deletion of the old one). */
  readonly names: readonly string[];
  /** Storage time of the newest version. */
  readonly lastSeen: number;
  readonly liveness: Liveness;
  /** Storage time at which a live marker expires unless rewritten. */
  readonly expiresAt: number;
}

/** Another process holds an exclusive marker (prune, repair index). */
export class LockedError extends Error {
  override name = 'LockedError';
}

/** A writer that may have been taken for gone while a prune ran: it must not commit, and starts again. */
export class FencedError extends Error {
  override name = 'FencedError';
}

function sealMarker(repo: Repository, marker: WriterMarker): { name: string; bytes: Buffer } {
  const bytes = sealObject(repo.keys.dataKey, 'writer', compressPayload(encodeWriterMarker(marker)));
  return { name: `${WRITERS_DIR}/${contentId(bytes)}`, bytes };
}

async function readMarker(repo: Repository, store: Store, name: string): Promise<WriterMarker> {
  const bytes = await store.get(name);
  if (contentId(bytes) !== idOf(name)) throw new FormatError(`${name} does not match its name (damaged)`);
  return decodeWriterMarker(decompressPayload(openObject(repo.keys.dataKey, 'writer', bytes, name), { atMost: MAX_WRITER_MARKER_BYTES }, name), name);
}

/** Local elapsed time that neither a suspended monotonic clock nor a wall clock set back can shrink. */
class Stopwatch {
  private readonly wall = Date.now();
  private readonly mono = performance.now();

  elapsed(): number {
    return Math.max(Date.now() - this.wall, performance.now() - this.mono);
  }
}

interface Beat {
  /** Storage time of the marker version written (or, if the store reports none, the local clock's). */
  readonly storageTime: number;
  readonly since: Stopwatch;
}

/**
 * The markers on `store`, grouped by process, with liveness judged against `storageNow` (a time read
 * from this store's clock). Unreadable objects under writers/ are skipped: they are nobody's marker.
 */
export async function observeWriters(repo: Repository, store: Store, storageNow: number, timing: MarkerTiming = MARKER_TIMING): Promise<ObservedWriter[]> {
  const versions = new Map<string, { marker: WriterMarker; names: string[]; lastSeen: number }>();
  for await (const info of store.list(WRITERS_DIR)) {
    let marker: WriterMarker;
    try {
      marker = await readMarker(repo, store, info.name);
    } catch (err) {
      if (err instanceof StoreError && err.kind === 'not-found') continue;
      repo.onDamaged?.(info.name, (err as Error).message);
      continue;
    }
    const seen = info.modified ?? Date.parse(marker.time);
    const entry = versions.get(marker.writer);
    if (!entry) versions.set(marker.writer, { marker, names: [info.name], lastSeen: seen });
    else {
      entry.names.push(info.name);
      if (marker.sequence > entry.marker.sequence) entry.marker = marker;
      entry.lastSeen = Math.max(entry.lastSeen, seen);
    }
  }
  const here = processScope();
  return [...versions.values()].map(({ marker, names, lastSeen }) => {
    const expiresAt = lastSeen + timing.expiryMs;
    const liveness: Liveness = marker.scope === here && !processAlive(marker.pid) ? 'dead' : storageNow >= expiresAt ? 'expired' : 'live';
    return { marker, store, names, lastSeen, liveness, expiresAt };
  });
}

/**
 * Deletes the markers that processes of this machine left behind when they were killed (a scaled-out
 * backup's worker processes, stopped by a cancel or killed): only markers of `pids` whose process is
 * gone. Best effort: a store that fails keeps them, and they count as gone there anyway (FORMAT.md
 * 12.1: same scope, no process). Returns how many markers were removed.
 */
export async function removeMarkersOfGone(repo: Repository, pids: ReadonlySet<number>): Promise<number> {
  let removed = 0;
  await Promise.all(
    repo.stores.map(async (store) => {
      try {
        for (const w of await observeWriters(repo, store, Date.now())) {
          if (w.liveness !== 'dead' || !pids.has(w.marker.pid)) continue;
          for (const name of w.names) await store.delete(name);
          removed++;
        }
      } catch {
        // Left for `coffer unlock` or a prune, which see them as gone.
      }
    }),
  );
  return removed;
}

export interface SessionOptions {
  /** What the process does, shown to people (backup, prune, restore…). */
  readonly command: string;
  /** At most one live exclusive marker at a time (prune, repair index). */
  readonly exclusive?: boolean;
  /**
   * Where a marker cannot be written: 'fail' (the default) stops; 'skip' carries on (a reader with
   * read-only credentials, or a backup that detaches that destination), listing it in `failed`. Even
   * with 'skip', failing on every store stops (unless there is nothing to write to).
   */
  readonly onStoreFailure?: 'fail' | 'skip';
  /** A reader may go on without any marker at all (read-only credentials). */
  readonly optional?: boolean;
  readonly timing?: MarkerTiming;
  /** Told when a heartbeat fails (it is tried again at the next one). */
  readonly onHeartbeatError?: (store: Store, err: Error) => void;
}

/** Per store: the current marker version and the history the fence needs. */
interface StoreState {
  readonly store: Store;
  name?: string;
  last?: Beat;
  /** Two heartbeats were a fence apart: a prune may have taken this process for gone. */
  gap: boolean;
}

/**
 * A running process's markers. `start` writes them and then reads the deletion records (in that order:
 * the safety argument of FORMAT.md 12.5 needs it); `end` deletes them.
 */
export class WriterSession {
  readonly repo: Repository;
  readonly writer = crypto.randomBytes(16).toString('hex');
  readonly command: string;
  readonly exclusive: boolean;
  readonly timing: MarkerTiming;
  private readonly started = new Date().toISOString();
  private sequence = 0;
  private readonly states: StoreState[];
  private timer?: NodeJS.Timeout;
  private beating: Promise<void> = Promise.resolve();
  private readonly onHeartbeatError?: (store: Store, err: Error) => void;
  /** The deletion records read right after the markers were durable. */
  records!: DeletionRecords;
  /** Stores where no marker could be written, and why: nothing may be committed there. */
  readonly failed = new Map<Store, Error>();

  private constructor(repo: Repository, options: SessionOptions) {
    this.repo = repo;
    this.command = options.command;
    this.exclusive = options.exclusive ?? false;
    this.timing = options.timing ?? MARKER_TIMING;
    this.onHeartbeatError = options.onHeartbeatError;
    this.states = repo.stores.map((store) => ({ store, gap: false }));
  }

  static async start(repo: Repository, options: SessionOptions): Promise<WriterSession> {
    const session = new WriterSession(repo, options);
    await Promise.all(session.states.map((s) => session.beat(s).catch((err: Error) => session.failed.set(s.store, err))));
    const skip = options.onStoreFailure === 'skip';
    const none = session.failed.size === session.states.length && session.states.length > 0;
    if (session.failed.size > 0 && (!skip || (none && !options.optional))) {
      await session.end();
      throw [...session.failed.values()][0]!;
    }
    try {
      if (session.exclusive) await session.claimExclusive();
      repo.reloadDeletionRecords();
      session.records = await repo.deletionRecords();
    } catch (err) {
      await session.end();
      throw err;
    }
    session.timer = setInterval(() => void session.heartbeat(), session.timing.heartbeatMs);
    session.timer.unref();
    return session;
  }

  get writerId(): Buffer {
    return Buffer.from(this.writer, 'hex');
  }

  /** Now, by `store`'s clock: the storage time of the last heartbeat there plus the time since. */
  storageNow(store: Store): number {
    const last = this.states.find((s) => s.store === store)?.last;
    return last ? last.storageTime + last.since.elapsed() : Date.now();
  }

  /** The markers on every store (this process's own excluded). */
  async others(): Promise<ObservedWriter[]> {
    const seen = await Promise.all(this.states.map((s) => observeWriters(this.repo, s.store, this.storageNow(s.store), this.timing)));
    return seen.flat().filter((w) => w.marker.writer !== this.writer);
  }

  private marker(): WriterMarker {
    const { host } = whoAmI();
    return { version: 1, writer: this.writer, sequence: this.sequence++, time: new Date().toISOString(), started: this.started, host, scope: processScope(), pid: process.pid, command: this.command, exclusive: this.exclusive };
  }

  /** Writes the next version on one store, then deletes the previous one. */
  private async beat(state: StoreState): Promise<void> {
    const sealed = sealMarker(this.repo, this.marker());
    const since = new Stopwatch();
    await state.store.put(sealed.name, sealed.bytes);
    const written = await state.store.stat(sealed.name);
    const storageTime = written?.modified ?? Date.now();
    if (state.last && storageTime - state.last.storageTime >= this.timing.fenceMs) state.gap = true;
    if (state.last && state.last.since.elapsed() >= this.timing.fenceMs) state.gap = true;
    const previous = state.name;
    state.name = sealed.name;
    state.last = { storageTime, since };
    // The new version is durable: an old one left behind names the same writer and start, so observers
    // fold it into this writer and prune removes it once the writer is gone. A write-only store (an
    // agent's, issue 13) refuses every delete; a failed delete must not stop the heartbeat.
    if (previous) await state.store.delete(previous).catch(() => undefined);
  }

  /** One heartbeat on every store; failures are reported and tried again next time. */
  heartbeat(): Promise<void> {
    this.beating = this.beating.then(() =>
      Promise.all(
        this.states.filter((s) => s.name).map((s) =>
          this.beat(s).catch((err: Error) => {
            this.onHeartbeatError?.(s.store, err);
          }),
        ),
      ).then(() => undefined),
    );
    return this.beating;
  }

  private async claimExclusive(): Promise<void> {
    const holder = (await this.others()).find((w) => w.marker.exclusive && w.liveness === 'live');
    if (!holder) return;
    const m = holder.marker;
    const silent = Math.round((this.storageNow(holder.store) - holder.lastSeen) / 60_000);
    throw new LockedError(
      `another ${m.command} is running on ${holder.store.location}: host ${m.host}, pid ${m.pid}, started ${m.started}, last heartbeat ${silent} min ago; ` +
        `wait for it to finish, or if that process is gone run coffer unlock (its marker also expires by itself ${Math.ceil((holder.expiresAt - this.storageNow(holder.store)) / 60_000)} min from now)`,
    );
  }

  /**
   * Called right before a snapshot is written to `store`: heartbeats there now and, if this process
   * could have been taken for gone at some point, refuses when a deletion record with packs appeared
   * since it started (FORMAT.md 12.1).
   */
  async fence(store: Store): Promise<void> {
    const state = this.states.find((s) => s.store === store);
    if (!state?.name) throw new FencedError(`no writer marker could be written to ${store.location}, so no snapshot is committed there: a prune could not see this ${this.command}`);
    await this.beating;
    await this.beat(state);
    if (!state.gap) return;
    this.repo.reloadDeletionRecords();
    const now = await this.repo.deletionRecords();
    const known = this.records.names;
    const appeared = now.records.filter((r) => !known.has(r.name) && r.record.packs.length > 0);
    if (appeared.length > 0) {
      throw new FencedError(
        `this ${this.command} was paused for 30 minutes or more while a prune marked data for deletion on ${store.location}; ` +
          'it does not commit a snapshot that could refer to that data and starts again (what it uploaded is reused)',
      );
    }
  }

  /** Stops the heartbeat and deletes the markers. */
  async end(): Promise<void> {
    clearInterval(this.timer);
    await this.beating.catch(() => undefined);
    await Promise.all(this.states.map((s) => (s.name ? s.store.delete(s.name).catch(() => undefined) : undefined)));
  }
}

/**
 * Removes the markers of the writers that are gone (expired, or dead on this host; with `all`, live
 * ones too), on every store of the session: they protect nothing any more (prune already takes them for
 * gone), and every backup and prune lists and reads them. `coffer unlock` does this on request; where
 * writers cannot delete their own (write-only agents', issue 13) the server does it after its prunes.
 */
export async function removeGoneWriters(session: WriterSession, options: { readonly all?: boolean } = {}): Promise<{ readonly writer: ObservedWriter; readonly removed: boolean }[]> {
  const seen: { writer: ObservedWriter; removed: boolean }[] = [];
  for (const writer of await session.others()) {
    const removed = writer.liveness !== 'live' || options.all === true;
    if (removed) for (const name of writer.names) await writer.store.delete(name);
    seen.push({ writer, removed });
  }
  return seen;
}
