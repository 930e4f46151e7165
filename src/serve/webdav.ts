// Every snapshot, read-only, over WebDAV (RFC 4918 class 1): OPTIONS, PROPFIND with depth 0 or 1, GET
// with a byte range, HEAD. Anything that would write answers 405. Finder, Windows Explorer, davfs2 and
// rclone mount it. Directories and regular files are shown; symlinks, devices and FIFOs have no WebDAV
// form and are left out. A GET of a directory answers a plain HTML listing for browsers.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeType } from '../format/tree.ts';
import type { FsEntry, SnapshotFs } from '../engine/snapshot-fs.ts';

export interface WebDavOptions {
  /** When set, clients must log in (HTTP Basic, any user name) with this password. */
  readonly password?: string;
  /** Told about each failed request (a damaged chunk, say), which the client sees as a 500. */
  readonly onError?: (err: Error, url: string) => void;
}

const READ_METHODS = 'OPTIONS, GET, HEAD, PROPFIND';
const WRITE_METHODS = new Set(['PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPPATCH', 'LOCK', 'UNLOCK', 'POST', 'PATCH']);
const MAX_PATH_BYTES = 64 * 1024;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Raw path components of a request path: %XX decoded to bytes (names need not be UTF-8); null if malformed. */
export function decodePath(rawPath: string): Buffer[] | null {
  if (rawPath.length > MAX_PATH_BYTES) return null;
  const parts: Buffer[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    const bytes: number[] = [];
    for (let i = 0; i < segment.length; i++) {
      const c = segment[i]!;
      if (c === '%') {
        const hex = segment.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(c, c.charCodeAt(0) < 256 ? 'latin1' : 'utf8'));
      }
    }
    const part = Buffer.from(bytes);
    // '..' never climbs: the tree has no such entry, and the root has no parent to go to.
    if (part.equals(Buffer.from('..')) || part.includes(0) || part.includes(0x2f)) return null;
    parts.push(part);
  }
  return parts;
}

/** A path as an href: every byte outside the unreserved set percent-encoded. */
export function encodePath(parts: readonly Buffer[], dir: boolean): string {
  const encoded = parts.map((p) => [...p].map((b) => (b < 0x80 && UNRESERVED.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join(''));
  return `/${encoded.join('/')}${dir && parts.length > 0 ? '/' : ''}`;
}

/**
 * Text escaped for XML. Characters XML 1.0 does not allow at all, even as references (most C0 controls,
 * U+FFFE, U+FFFF), become U+FFFD: a file name holding one must not make a client reject the whole listing.
 */
function xml(text: string): string {
  return text
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, '\ufffd')
    .replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Only directories and regular files have a WebDAV form. */
function shown(entry: FsEntry): boolean {
  return entry.type === NodeType.Dir || entry.type === NodeType.File;
}

function etagOf(entry: FsEntry): string {
  const what = entry.node?.content ?? entry.node?.subtree ?? Buffer.from(`${entry.name.toString('hex')}:${entry.mtime.getTime()}`);
  return `"${crypto.createHash('sha256').update(what).digest('hex').slice(0, 32)}"`;
}

function propResponse(parts: readonly Buffer[], entry: FsEntry): string {
  const dir = entry.type === NodeType.Dir;
  const name = parts.length > 0 ? parts[parts.length - 1]!.toString() : '/';
  return [
    '<D:response>',
    `<D:href>${xml(encodePath(parts, dir))}</D:href>`,
    '<D:propstat><D:prop>',
    `<D:displayname>${xml(name)}</D:displayname>`,
    dir ? '<D:resourcetype><D:collection/></D:resourcetype>' : '<D:resourcetype/>',
    dir ? '' : `<D:getcontentlength>${entry.size}</D:getcontentlength><D:getcontenttype>application/octet-stream</D:getcontenttype>`,
    `<D:getlastmodified>${entry.mtime.toUTCString()}</D:getlastmodified>`,
    `<D:creationdate>${entry.mtime.toISOString()}</D:creationdate>`,
    `<D:getetag>${xml(etagOf(entry))}</D:getetag>`,
    '<D:supportedlock/>',
    '</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>',
    '</D:response>',
  ].join('');
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` → [start, end] inclusive; undefined: serve it all; null: unsatisfiable. */
export function parseRange(header: string | undefined, size: number): [number, number] | undefined | null {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, or another unit: the whole body is a valid answer (RFC 9110 14.2).
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return null;
  return [start, end];
}

const STREAM_PIECE = 4 * 1024 * 1024;

export class WebDavServer {
  private readonly fsys: SnapshotFs;
  private readonly options: WebDavOptions;
  private readonly server: http.Server;

  constructor(fsys: SnapshotFs, options: WebDavOptions = {}) {
    this.fsys = fsys;
    this.options = options;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.options.onError?.(err, req.url ?? '');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
        else res.destroy(err);
      });
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private authorised(req: http.IncomingMessage): boolean {
    const password = this.options.password;
    if (password === undefined) return true;
    const m = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    const given = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const supplied = Buffer.from(given.slice(given.indexOf(':') + 1));
    const expected = Buffer.from(password);
    // Same length first: timingSafeEqual needs it, and the length is not the secret.
    return given.includes(':') && supplied.length === expected.length && crypto.timingSafeEqual(supplied, expected);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('DAV', '1');
    res.setHeader('MS-Author-Via', 'DAV');
    if (!this.authorised(req)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="coffer", charset="UTF-8"' }).end();
      return;
    }
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(200, { Allow: READ_METHODS, 'Content-Length': '0' }).end();
      return;
    }
    if (WRITE_METHODS.has(method)) {
      req.resume();
      res.writeHead(405, { Allow: READ_METHODS, 'content-type': 'text/plain' }).end('coffer serves snapshots read-only\n');
      return;
    }
    if (method !== 'GET' && method !== 'HEAD' && method !== 'PROPFIND') {
      res.writeHead(501, { Allow: READ_METHODS }).end();
      return;
    }
    // The raw path: URL parsing would resolve '..' before decodePath could refuse it.
    const raw = req.url ?? '/';
    const parts = decodePath(raw.startsWith('/') ? raw.replace(/[?#].*$/, '') : new URL(raw).pathname);
    if (!parts) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('malformed path\n');
      return;
    }
    const entry = await this.fsys.lookup(parts);
    if (!entry || !shown(entry)) {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (method === 'PROPFIND') return this.propfind(req, res, parts, entry);
    if (entry.type === NodeType.Dir) return this.listing(res, parts, entry, method === 'HEAD');
    return this.download(req, res, entry, method === 'HEAD');
  }

  private async propfind(req: http.IncomingMessage, res: http.ServerResponse, parts: Buffer[], entry: FsEntry): Promise<void> {
    // The request body (which properties) is not needed: every property is always sent.
    req.resume();
    const depth = (req.headers.depth ?? 'infinity').toString().toLowerCase();
    if (depth !== '0' && depth !== '1') {
      res.writeHead(403, { 'content-type': 'application/xml; charset=utf-8' });
      res.end('<?xml version="1.0" encoding="utf-8"?><D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>');
      return;
    }
    const responses = [propResponse(parts, entry)];
    if (depth === '1' && entry.type === NodeType.Dir) {
      for (const child of await this.fsys.list(entry)) if (shown(child)) responses.push(propResponse([...parts, child.name], child));
    }
    const body = `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">${responses.join('\n')}</D:multistatus>\n`;
    res.writeHead(207, { 'content-type': 'application/xml; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  private async listing(res: http.ServerResponse, parts: Buffer[], entry: FsEntry, head: boolean): Promise<void> {
    const children = (await this.fsys.list(entry)).filter(shown);
    const rows = children.map((c) => {
      const dir = c.type === NodeType.Dir;
      return `<li><a href="${xml(encodePath([...parts, c.name], dir))}">${xml(c.name.toString())}${dir ? '/' : ''}</a>${dir ? '' : ` ${c.size} bytes`}</li>`;
    });
    const title = xml(encodePath(parts, true));
    const body = `<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1><ul>${parts.length > 0 ? '<li><a href="../">../</a></li>' : ''}${rows.join('')}</ul>\n`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(head ? undefined : body);
  }

  private async download(req: http.IncomingMessage, res: http.ServerResponse, entry: FsEntry, head: boolean): Promise<void> {
    const range = parseRange(req.headers.range, entry.size);
    const common = { 'accept-ranges': 'bytes', 'last-modified': entry.mtime.toUTCString(), etag: etagOf(entry), 'content-type': 'application/octet-stream' };
    if (range === null) {
      res.writeHead(416, { ...common, 'content-range': `bytes */${entry.size}` }).end();
      return;
    }
    const [start, end] = range ?? [0, entry.size - 1];
    const length = Math.max(0, end - start + 1);
    res.writeHead(range ? 206 : 200, { ...common, 'content-length': length, ...(range ? { 'content-range': `bytes ${start}-${end}/${entry.size}` } : {}) });
    if (head || length === 0) {
      res.end();
      return;
    }
    let closed = false;
    res.once('close', () => (closed = true));
    for (let at = start; at <= end && !closed; at += STREAM_PIECE) {
      const piece = await this.fsys.read(entry.node!, at, Math.min(STREAM_PIECE, end + 1 - at));
      if (!res.write(piece)) await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
    }
    res.end();
  }
}
