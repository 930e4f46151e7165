// Answers the server's questions about a repository for the dashboard: the snapshot list, one directory
// of a snapshot, a diff, a tar of chosen paths (streamed up to the server), a test-write. The agent
// holds the passphrase, so these are asked of it. An opened repository stays open for a few minutes,
// so a person clicking through folders pays for opening it (keys, index) once.
import { Readable, Transform } from 'node:stream';
import { dumpSelectionTar } from '../engine/dump.ts';
import { BrowseError, diffSummary, listDirectory, MAX_PAGE } from '../engine/snapshot-browse.ts';
import { testWrite } from '../engine/test-write.ts';
import { SnapshotView } from '../engine/snapshot-view.ts';
import type { TreeNode } from '../format/tree.ts';
import { Repository, RepositoryError, type StoredSnapshot } from '../repo/repository.ts';
import { resolveSnapshot } from '../repo/snapshot-ref.ts';
import type { Store } from '../store/store.ts';
import type { ServerClient } from './client.ts';
import type { DestinationRef, FromAgent, RepoQuery } from './protocol.ts';

/** An open repository is closed after this long without a question. */
const IDLE_MS = 5 * 60_000;
/** The snapshot list is read again after this long (new backups appear). */
const LIST_TTL_MS = 10_000;
const MAX_DIFF_LIST = 5000;
const MAX_TAR_PATHS = 1000;
/** Questions that take longer are given up (a diff of huge snapshots); the server stops waiting sooner. */
const QUERY_TIMEOUT_MS = 5 * 60_000;

interface OpenRepo {
  /** The repository with its index, and the snapshots listed before the index was read (all of their data is in it). */
  readonly repo: Promise<{ repo: Repository; indexed: Set<string>; listed: { at: number; snapshots: StoredSnapshot[] } }>;
  timer: NodeJS.Timeout | undefined;
  busy: number;
  list?: { at: number; snapshots: StoredSnapshot[] };
}

/** A snapshot newer than the open repository's index: open it again. */
class StaleIndex extends Error {}

export interface RepoQueryOptions {
  readonly client: ServerClient;
  readonly passphrase: () => Promise<string>;
  /** Opens a destination's store as jobs do (pre-signed URLs, bandwidth limits, retries). */
  readonly openStore: (ref: DestinationRef) => Store;
  readonly send: (message: FromAgent) => void;
  /** The one-line message for a failure (the CLI's rules, handed down). */
  readonly describeError: (err: unknown) => string;
}

export class RepoQueries {
  private readonly options: RepoQueryOptions;
  private readonly open = new Map<string, OpenRepo>();

  constructor(options: RepoQueryOptions) {
    this.options = options;
  }

  /** Answers one question; never throws (a failure is the answer). */
  handle(id: string, destinations: readonly DestinationRef[], query: RepoQuery): void {
    void this.answer(destinations, query).then(
      (result) => this.options.send({ type: 'answer', id, result }),
      (err: unknown) => this.options.send({ type: 'answer', id, error: err instanceof BrowseError ? err.message : this.options.describeError(err) }),
    );
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const o of all) clearTimeout(o.timer);
    await Promise.all(all.map((o) => o.repo.then((r) => r.repo.close()).catch(() => {})));
  }

  private async answer(destinations: readonly DestinationRef[], query: RepoQuery): Promise<unknown> {
    if (!Array.isArray(destinations) || destinations.length === 0) throw new BrowseError('no destination given');
    if (query?.op === 'test-write') return this.testWrite(destinations);
    const key = destinations.map((d) => `${d.id}\0${d.location}`).join('\n');
    try {
      return await this.ask(key, destinations, query);
    } catch (err) {
      if (!(err instanceof StaleIndex)) throw err;
      this.drop(key);
      return this.ask(key, destinations, query);
    }
  }

  private async ask(key: string, destinations: readonly DestinationRef[], query: Exclude<RepoQuery, { op: 'test-write' }>): Promise<unknown> {
    const entry = this.repoFor(key, destinations);
    entry.busy++;
    clearTimeout(entry.timer);
    const signal = AbortSignal.timeout(QUERY_TIMEOUT_MS);
    try {
      const { repo } = await entry.repo;
      switch (query.op) {
        case 'snapshots':
          return (await this.snapshots(entry, repo)).map(describe).reverse();
        case 'tree': {
          const snap = await this.snapshot(entry, repo, String(query.snapshot));
          return await listDirectory(await SnapshotView.open(repo, snap.snapshot), String(query.path ?? '/'), {
            ...(typeof query.after === 'string' ? { after: query.after } : {}),
            ...(typeof query.filter === 'string' && query.filter !== '' ? { filter: query.filter } : {}),
            limit: Number(query.limit) || MAX_PAGE,
          });
        }
        case 'diff': {
          const from = await this.snapshot(entry, repo, String(query.snapshot));
          const to = await this.snapshot(entry, repo, String(query.to));
          return await diffSummary(await SnapshotView.open(repo, from.snapshot), await SnapshotView.open(repo, to.snapshot), Math.min(MAX_DIFF_LIST, Number(query.limit) || MAX_DIFF_LIST), signal);
        }
        case 'tar':
          return await this.tar(repo, await this.snapshot(entry, repo, String(query.snapshot)), query, signal);
        default:
          throw new BrowseError(`this agent does not know the question ${JSON.stringify((query as { op?: unknown })?.op)}; update it to the server's version`);
      }
    } finally {
      entry.busy--;
      if (entry.busy === 0) this.scheduleClose(key, entry);
    }
  }

  private repoFor(key: string, destinations: readonly DestinationRef[]): OpenRepo {
    let entry = this.open.get(key);
    if (!entry) {
      const stores = destinations.map((d) => this.options.openStore(d));
      const repo = (async () => {
        try {
          const r = await Repository.open(stores, await this.options.passphrase());
          // Snapshots are written after the index of their data: listed first, each one's data is in the index read next.
          const snapshots = await r.listSnapshots();
          await r.loadIndex();
          return { repo: r, indexed: new Set(snapshots.map((x) => x.id)), listed: { at: Date.now(), snapshots } };
        } catch (err) {
          await Promise.all(stores.map((s) => s.close().catch(() => {})));
          throw err;
        }
      })();
      const created: OpenRepo = { repo, timer: undefined, busy: 0 };
      // A repository that failed to open is not kept: the next question tries again.
      repo.catch(() => this.open.get(key) === created && this.open.delete(key));
      this.open.set(key, created);
      entry = created;
    }
    return entry;
  }

  private scheduleClose(key: string, entry: OpenRepo): void {
    entry.timer = setTimeout(() => {
      if (entry.busy > 0 || this.open.get(key) !== entry) return;
      this.drop(key);
    }, IDLE_MS);
    entry.timer.unref();
  }

  /** Forgets an open repository; it closes once the questions using it are answered. */
  private drop(key: string): void {
    const entry = this.open.get(key);
    if (!entry) return;
    this.open.delete(key);
    clearTimeout(entry.timer);
    const close = (): void => void entry.repo.then((r) => r.repo.close()).catch(() => {});
    if (entry.busy === 0) close();
    else entry.timer = setTimeout(close, IDLE_MS);
  }

  private async snapshots(entry: OpenRepo, repo: Repository, fresh = false): Promise<StoredSnapshot[]> {
    entry.list ??= (await entry.repo).listed;
    if (!fresh && entry.list && Date.now() - entry.list.at < LIST_TTL_MS) return entry.list.snapshots;
    const snapshots = await repo.listSnapshots();
    entry.list = { at: Date.now(), snapshots };
    return snapshots;
  }

  /** A snapshot by id or prefix; one made since the list was read is found by reading it again (and the index with it). */
  private async snapshot(entry: OpenRepo, repo: Repository, ref: string): Promise<StoredSnapshot> {
    let found: StoredSnapshot;
    try {
      found = resolveSnapshot(await this.snapshots(entry, repo), ref);
    } catch (err) {
      if (!(err instanceof RepositoryError) || !/^no snapshot/.test(err.message)) throw err;
      found = resolveSnapshot(await this.snapshots(entry, repo, true), ref);
    }
    if (!(await entry.repo).indexed.has(found.id)) throw new StaleIndex();
    return found;
  }

  /** Streams a tar of the paths to the server; each is named by its last component. */
  private async tar(repo: Repository, snap: StoredSnapshot, query: Extract<RepoQuery, { op: 'tar' }>, signal: AbortSignal): Promise<{ bytes: number }> {
    const paths = Array.isArray(query.paths) ? query.paths.map(String) : [];
    if (paths.length === 0 || paths.length > MAX_TAR_PATHS) throw new BrowseError(`choose from 1 to ${MAX_TAR_PATHS} paths`);
    if (typeof query.upload !== 'string' || !query.upload.startsWith('/api/agent/uploads/')) throw new BrowseError('the server gave no place to upload to');
    const view = await SnapshotView.open(repo, snap.snapshot);
    const items: { name: string; node: TreeNode }[] = [];
    const used = new Set<string>();
    for (const p of paths) {
      const found = await view.find(p);
      const parts = p.split('/').filter((x) => x !== '' && x !== '.');
      if (!found.node || parts.length === 0) throw new BrowseError(`${p}: choose files or folders inside the snapshot, not its top`);
      // Two selections with the same last name (a/x and b/x) keep apart.
      let name = parts[parts.length - 1]!;
      for (let i = 2; used.has(name); i++) name = `${parts[parts.length - 1]}-${i}`;
      used.add(name);
      items.push({ name, node: found.node });
    }
    let bytes = 0;
    const body = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const upload = this.options.client.upload(query.upload, Readable.toWeb(body) as ReadableStream<Uint8Array>, 'application/x-tar', signal);
    try {
      await dumpSelectionTar(repo, view, items, body);
      body.end();
    } catch (err) {
      body.destroy(err as Error);
      await upload.catch(() => {});
      throw err;
    }
    await upload;
    return { bytes };
  }

  private async testWrite(destinations: readonly DestinationRef[]): Promise<{ ok: boolean; ms: number; error?: string }> {
    let ms = 0;
    for (const d of destinations) {
      const store = this.options.openStore(d);
      try {
        const result = await testWrite(store);
        ms += result.ms;
        if (!result.ok) return { ok: false, ms: Math.round(ms), error: `${d.name}: ${result.error}` };
      } finally {
        await store.close().catch(() => {});
      }
    }
    return { ok: true, ms: Math.round(ms) };
  }
}

function describe(s: StoredSnapshot) {
  const x = s.snapshot;
  return { id: s.id, time: x.time, host: x.host, paths: x.paths, tags: x.tags, totalFiles: x.summary.totalFiles, totalBytes: x.summary.totalBytes, bytesAdded: x.summary.bytesAdded };
}
