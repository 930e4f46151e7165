// A repository behind restic's REST protocol (restic's rest-server, `rclone serve restic`), spoken over
// a RestTransport: HTTP(S) for rest: locations, HTTP/2 over rclone's stdin/stdout for rclone: ones.
// The protocol knows only restic's folders (data, keys, locks, snapshots, index) and `config`, so
// Coffer's names are mapped onto them (docs/FORMAT.md, "REST servers"). rest-server refuses an upload
// whose bytes do not hash to its name and every upload over an existing object, which suits Coffer's
// content-addressed, write-once objects; append-only servers refuse every delete but of locks.
import { TMP_DIR, WRITERS_DIR, belongsTo, checkFolder, checkObjectName, checkObjectSize, maxObjectSize, plausibleSize, type ForeignObjectHandler } from './layout.ts';
import { StoreError, alreadyStored, cutRange, pastEnd, type ByteRange, type ObjectInfo, type PutOptions, type Store } from './store.ts';
import { NETWORK_ERROR_CODES } from './network-errors.ts';
import { describeTlsError } from './tls.ts';

/** What a listing answer may take up before it is refused (a million packs list in about 100 MB). */
const MAX_LISTING_BYTES = 1024 ** 3;
const API_V2 = 'application/vnd.x.restic.rest.v2';
/** HEAD requests at once, to size the objects of a version 1 listing. */
const STAT_CONCURRENCY = 8;

export interface RestRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'DELETE';
  /** Below the repository's root: 'config', 'data/<id>', 'keys/', or '?create=true' for the root itself. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** A response body longer than this is refused. */
  readonly maxBody?: number;
}

export interface RestResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
}

/**
 * Carries requests to the server. Failures to get an answer are thrown: a StoreError when the
 * transport knows what it means (its message then lacks the action, which the store adds), else the
 * network error as it came.
 */
export interface RestTransport {
  request(request: RestRequest): Promise<RestResponse>;
  close(): Promise<void>;
}

/**
 * The REST folder holding each folder of the layout (layout.ts). `tmp` (doctor's probe) goes to
 * `locks`, the one folder whose objects an append-only server lets go of; a path with a `/` lies in a
 * nested repository of its own. A folder added to the layout
 * needs a row here (and in docs/FORMAT.md), or REST stores refuse its objects.
 */
export const REST_FOLDERS: Readonly<Record<string, string>> = {
  data: 'data',
  keys: 'keys',
  index: 'index',
  snapshots: 'snapshots',
  tmp: 'locks',
  // Restic has no folder for these, so each gets a repository of its own below the location (servers
  // serve any number of them), in its `locks` folder: an append-only server still lets a backup
  // replace its writer marker there.
  deletions: 'deletions/locks',
  writers: 'writers/locks',
};

/** Folders whose objects' ages matter (writer markers, leftovers that prune removes once old enough). */
const TIMED_FOLDERS: ReadonlySet<string> = new Set([WRITERS_DIR, TMP_DIR]);

export class RestStore implements Store {
  readonly location: string;
  private readonly transport: RestTransport;
  private readonly onForeign: ForeignObjectHandler;
  private created = false;
  /** Nested repositories (see REST_FOLDERS) known to exist. */
  private readonly createdBelow = new Set<string>();

  constructor(location: string, transport: RestTransport, onForeign: ForeignObjectHandler = () => {}) {
    this.location = location;
    this.transport = transport;
    this.onForeign = onForeign;
  }

  /**
   * The REST path of an object name, which must be one of the layout (data/ab/ab12… → data/ab12…:
   * the server adds the ab/ itself). Layout names are hex and fixed words: nothing to escape.
   */
  private restPath(name: string, action: string): string {
    checkObjectName(name, action);
    if (name === 'config') return 'config';
    const folder = name.slice(0, name.indexOf('/'));
    const restFolder = REST_FOLDERS[folder];
    if (!restFolder) throw new StoreError('permanent', `${action}: the folder ${folder}/ has no place on a REST server yet`);
    return `${restFolder}/${name.slice(name.lastIndexOf('/') + 1)}`;
  }

  private async send(request: RestRequest, action: string): Promise<RestResponse> {
    try {
      return await this.transport.request(request);
    } catch (err) {
      throw describeTransportError(err, action);
    }
  }

  /** Asks the server to set up the repository's folders; it answers 200 when they already exist. */
  private async create(action: string): Promise<void> {
    if (this.created) return;
    const res = await this.send({ method: 'POST', path: '?create=true' }, action);
    if (!ok(res)) throw statusError(res, `${action} (creating the repository)`);
    this.created = true;
  }

  /** Sets up the nested repository a REST path lies in (rest-server writes only into existing folders). */
  private async createBelow(restPath: string, action: string): Promise<void> {
    const parts = restPath.split('/');
    if (parts.length <= 2) return;
    const below = parts.slice(0, -2).join('/');
    if (this.createdBelow.has(below)) return;
    const res = await this.send({ method: 'POST', path: `${below}/?create=true` }, action);
    if (!ok(res)) throw statusError(res, `${action} (creating ${below}/ on the server)`);
    this.createdBelow.add(below);
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    const action = `writing ${name} to ${this.location}`;
    const path = this.restPath(name, action);
    // The protocol has no put-if-absent, and rclone (unless append-only) overwrites: so HEAD first,
    // which also saves uploading an object another backup already stored.
    const existing = await this.stat(name);
    if (existing) return alreadyStored(action, existing.size, data.length);
    if (name === 'config') await this.create(action);
    await this.createBelow(path, action);
    // Stopped before it is sent, but never cut off while it goes: rclone serve restic writes in place,
    // so a cut-off upload shows a partial object under its name until rclone notices and removes it.
    options?.signal?.throwIfAborted();
    const res = await this.send({ method: 'POST', path, body: data, headers: { 'content-type': 'application/octet-stream' } }, action);
    if (ok(res)) return true;
    // rest-server, and rclone when append-only, refuse to overwrite: another writer got there first.
    if (res.status === 403) {
      const winner = await this.stat(name);
      if (winner) return alreadyStored(action, winner.size, data.length);
    }
    // rest-server checks that an object's bytes hash to its name, and says only 'Bad Request'.
    if (res.status === 400) {
      throw new StoreError('permanent', `${action}: the server refused the upload (HTTP 400); rest-server refuses objects whose name is not the SHA-256 of their bytes`);
    }
    throw statusError(res, action);
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const action = `reading ${name} from ${this.location}`;
    const path = this.restPath(name, action);
    // 'bytes=5-4' is not a valid range, and servers answer it with the whole object.
    if (range?.length === 0) {
      const info = await this.stat(name);
      if (!info) throw new StoreError('not-found', `${action}: not found`);
      if (range.offset > info.size) throw pastEnd(action, range);
      return Buffer.alloc(0);
    }
    if (range) checkObjectSize(name, range.length, action);
    const headers: Record<string, string> = range ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {};
    // A server that ignores Range sends the whole object: no more than an object of the name may have.
    const res = await this.send({ method: 'GET', path, headers, maxBody: maxObjectSize(name) }, action);
    if (range && res.status === 416) throw pastEnd(action, range);
    if (!ok(res)) throw statusError(res, action);
    const declared = res.headers['content-length'];
    if (declared !== undefined && Number(declared) !== res.body.length) {
      throw new StoreError('transient', `${action}: the connection ended after ${res.body.length} of ${declared} bytes`);
    }
    return range ? cutRange(res.body, res.status === 206 ? res.headers['content-range'] : undefined, range, action) : res.body;
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    const action = `checking ${name} in ${this.location}`;
    const res = await this.send({ method: 'HEAD', path: this.restPath(name, action) }, action);
    if (res.status === 404) return undefined;
    if (!ok(res)) throw statusError(res, action);
    const size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) throw new StoreError('permanent', `${action}: the server gave no usable Content-Length`);
    // rest-server and rclone send the file's time, by the server's clock (whole seconds).
    const modified = Date.parse(res.headers['last-modified'] ?? '');
    return Number.isFinite(modified) ? { name, size, modified } : { name, size };
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const action = `listing ${dir} in ${this.location}`;
    const folder = checkFolder(dir, action);
    const restFolder = REST_FOLDERS[dir];
    if (!restFolder) throw new StoreError('permanent', `${action}: the folder has no place on a REST server yet`);
    const res = await this.send({ method: 'GET', path: `${restFolder}/`, headers: { accept: API_V2 }, maxBody: MAX_LISTING_BYTES }, action);
    // rest-server answers 404 for a folder nothing was written to yet.
    if (res.status === 404) return;
    if (!ok(res)) throw statusError(res, action);
    let entries: unknown;
    try {
      entries = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new StoreError('permanent', `${action}: the server's listing is not JSON`);
    }
    if (!Array.isArray(entries)) throw new StoreError('permanent', `${action}: the server's listing is not a JSON array`);
    /** The object name of a listed entry, or undefined (reported) when it is none of the folder's. */
    const nameOf = (entry: unknown): string | undefined => {
      if (typeof entry !== 'string') {
        this.onForeign(`${dir}/?`, `listed without a name (${JSON.stringify(entry)?.slice(0, 80)})`);
        return undefined;
      }
      const name = dir === 'data' ? `data/${entry.slice(0, 2)}/${entry}` : `${dir}/${entry}`;
      if (belongsTo(folder, name)) return name;
      this.onForeign(`${dir}/${entry}`, 'not an object name of a Coffer repository');
      return undefined;
    };
    // Listings carry no times: a folder whose ages matter is listed by name and each object asked.
    if (res.headers['content-type']?.startsWith(API_V2) && !TIMED_FOLDERS.has(dir)) {
      for (const entry of entries as { name?: unknown; size?: unknown }[]) {
        const name = nameOf(entry?.name);
        if (name === undefined) continue;
        if (plausibleSize(name, entry.size)) yield { name, size: entry.size };
        else this.onForeign(name, `listed with an impossible size (${String(entry.size).slice(0, 40)})`);
      }
      return;
    }
    // Version 1 of the protocol lists names only: each object's size takes a HEAD.
    const names = entries.map((entry) => nameOf(typeof entry === 'object' && entry !== null ? (entry as { name?: unknown }).name : entry)).filter((name) => name !== undefined);
    for (let i = 0; i < names.length; i += STAT_CONCURRENCY) {
      const infos = await Promise.all(names.slice(i, i + STAT_CONCURRENCY).map((name) => this.stat(name)));
      // An object deleted since the listing is simply no longer there.
      for (const info of infos) if (info) yield info;
    }
  }

  async delete(name: string): Promise<void> {
    const action = `deleting ${name} from ${this.location}`;
    const res = await this.send({ method: 'DELETE', path: this.restPath(name, action) }, action);
    if (ok(res) || res.status === 404) return;
    if (res.status === 403) {
      throw new StoreError('denied', `${action}: the server refuses deletes (HTTP 403): it is append-only (rest-server or rclone serve restic with --append-only); delete on the server itself`);
    }
    throw statusError(res, action);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

function ok(res: RestResponse): boolean {
  return res.status >= 200 && res.status < 300;
}

/** The first line of an error answer's body, for the message (servers send 'Not Found\n' and the like). */
function bodyText(res: RestResponse): string {
  const text = res.body.subarray(0, 300).toString('utf8').split('\n')[0]!.trim();
  return /^[\x20-\x7e]*$/.test(text) ? text : '';
}

/** Turns an HTTP answer that is not a success into a one-line StoreError. */
export function statusError(res: RestResponse, action: string): StoreError {
  const text = bodyText(res);
  const detail = `HTTP ${res.status}${text ? `: ${text}` : ''}`;
  switch (true) {
    case res.status === 401:
      return new StoreError(
        'denied',
        `${action}: the server wants a valid user name and password (${detail}); put them in the location (rest:https://USER:PASSWORD@host/path/) or set COFFER_REST_USERNAME and COFFER_REST_PASSWORD`,
      );
    case res.status === 403:
      return new StoreError('denied', `${action}: the server refuses (${detail})`);
    case res.status === 404:
      return new StoreError('not-found', `${action}: not found`);
    case res.status === 413 || res.status === 507:
      return new StoreError('no-space', `${action}: the server's storage or quota is full (${detail})`);
    case res.status === 429 || (res.status >= 500 && res.status !== 501):
      return new StoreError('transient', `${action}: ${detail}`);
    default:
      return new StoreError('permanent', `${action}: ${detail}`);
  }
}

const NETWORK_CODES = new Set([
  ...NETWORK_ERROR_CODES,
  // An HTTP/2 stream or session that failed (rclone's): a new one may well work.
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_INVALID_SESSION',
]);

/** A failure to get an answer at all, as a one-line StoreError about `action`. */
function describeTransportError(err: unknown, action: string): StoreError {
  if (err instanceof StoreError) return new StoreError(err.kind, `${action}: ${err.message}`, { cause: err });
  const tlsError = describeTlsError(err, action);
  if (tlsError) return tlsError;
  const { code, message = String(err) } = err as { code?: string; message?: string };
  const detail = message.replace(/\s+/g, ' ').trim();
  if (code && NETWORK_CODES.has(code)) return new StoreError('transient', `${action}: connection lost or refused (${detail})`, { cause: err });
  return new StoreError('permanent', `${action}: ${detail}`, { cause: err });
}
