// A hostile SFTP server (ssh2's Server, loopback only): it serves a read-only virtual directory tree and
// lists whatever names the test asks for, including ones no file system can hold ('../../x', 'a/b'),
// symbolic links and absurd sizes. A real OpenSSH server cannot send such listings; a compromised or
// malicious one can. Any password is accepted; the host key is fresh and written to a known_hosts file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';

const { Server, utils } = ssh2;
const { STATUS_CODE } = utils.sftp;

/** An entry a listing shows: the name is sent exactly as given. */
export interface CraftedEntry {
  readonly filename: string;
  readonly type: 'file' | 'dir' | 'symlink';
  /** Size the listing claims (default: the content's). */
  readonly size?: number;
  /** What reading it gives, at the path the client asks for (its directory joined with the name). */
  readonly content?: Buffer;
}

export interface HostileSftp {
  readonly port: number;
  /** A location for the directory `root` of the virtual tree. */
  location(root: string): string;
  /** The environment coffer needs to reach it. */
  readonly env: Record<string, string>;
  /** Paths the clients asked for, in order. */
  readonly requests: string[];
  stop(): Promise<void>;
}

interface Node {
  readonly type: 'file' | 'dir' | 'symlink';
  readonly content: Buffer;
  readonly size: number;
}

const MODE = { file: 0o100644, dir: 0o040755, symlink: 0o120777 } as const;
const LONG = { file: '-rw-r--r--', dir: 'drwxr-xr-x', symlink: 'lrwxrwxrwx' } as const;

/**
 * `files`: absolute path → content (directories are implied); `crafted`: directory → extra entries its
 * listing shows.
 */
export async function startHostileSftp(files: ReadonlyMap<string, Buffer>, crafted: ReadonlyMap<string, readonly CraftedEntry[]> = new Map()): Promise<HostileSftp> {
  const nodes = new Map<string, Node>();
  const listings = new Map<string, Map<string, Node>>();
  const addToListing = (dir: string, name: string, node: Node): void => {
    let listing = listings.get(dir);
    if (!listing) listings.set(dir, (listing = new Map()));
    listing.set(name, node);
  };
  for (const [file, content] of files) {
    const node: Node = { type: 'file', content, size: content.length };
    nodes.set(file, node);
    for (let child = file, dir = path.posix.dirname(file); child !== dir; child = dir, dir = path.posix.dirname(dir)) {
      addToListing(dir, path.posix.basename(child), child === file ? node : { type: 'dir', content: Buffer.alloc(0), size: 4096 });
      if (child !== file) nodes.set(child, { type: 'dir', content: Buffer.alloc(0), size: 4096 });
    }
  }
  for (const [dir, entries] of crafted) {
    for (const entry of entries) {
      const content = entry.content ?? Buffer.alloc(0);
      const node: Node = { type: entry.type, content, size: entry.size ?? content.length };
      addToListing(dir, entry.filename, node);
      if (entry.type !== 'dir') nodes.set(path.posix.join(dir, entry.filename), node);
    }
  }

  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-hostile-sftp-'));
  const hostKey = utils.generateKeyPairSync('ed25519');
  const requests: string[] = [];
  const clients = new Set<{ end(): unknown }>();
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        acceptSession().on('sftp', (acceptSftp) => {
          const sftp = acceptSftp();
          const handles = new Map<number, { path: string; listed?: boolean }>();
          let nextHandle = 0;
          const open = (file: string): Buffer => {
            const id = nextHandle++;
            handles.set(id, { path: file });
            const handle = Buffer.alloc(4);
            handle.writeUInt32BE(id);
            return handle;
          };
          const byHandle = (handle: Buffer) => handles.get(handle.readUInt32BE(0));
          const attrsOf = (node: Node) => ({ mode: MODE[node.type], uid: 0, gid: 0, size: node.size, atime: 0, mtime: 0 });
          sftp.on('REALPATH', (reqid, file) => {
            const resolved = path.posix.resolve('/', file);
            sftp.name(reqid, [{ filename: resolved, longname: resolved, attrs: attrsOf({ type: 'dir', content: Buffer.alloc(0), size: 0 }) }]);
          });
          const stat = (reqid: number, file: string): void => {
            requests.push(file);
            const node = nodes.get(path.posix.normalize(file));
            if (node) sftp.attrs(reqid, attrsOf(node));
            else sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
          };
          sftp.on('STAT', stat);
          sftp.on('LSTAT', stat);
          sftp.on('OPENDIR', (reqid, dir) => {
            requests.push(dir);
            if (listings.has(path.posix.normalize(dir))) sftp.handle(reqid, open(path.posix.normalize(dir)));
            else sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
          });
          sftp.on('READDIR', (reqid, handle) => {
            const open = byHandle(handle);
            if (!open || open.listed) return void sftp.status(reqid, STATUS_CODE.EOF);
            open.listed = true;
            const entries = [...(listings.get(open.path) ?? [])].map(([filename, node]) => ({
              filename,
              longname: `${LONG[node.type]} 1 root root ${node.size} Jan  1 00:00 ${filename}`,
              attrs: attrsOf(node),
            }));
            sftp.name(reqid, entries);
          });
          sftp.on('OPEN', (reqid, file, flags) => {
            requests.push(file);
            const node = nodes.get(path.posix.normalize(file));
            if (flags & utils.sftp.OPEN_MODE.WRITE) return void sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
            if (!node || node.type !== 'file') return void sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
            sftp.handle(reqid, open(path.posix.normalize(file)));
          });
          sftp.on('FSTAT', (reqid, handle) => {
            const node = nodes.get(byHandle(handle)?.path ?? '');
            if (node) sftp.attrs(reqid, attrsOf(node));
            else sftp.status(reqid, STATUS_CODE.FAILURE);
          });
          sftp.on('READ', (reqid, handle, offset, length) => {
            const node = nodes.get(byHandle(handle)?.path ?? '');
            if (!node) return void sftp.status(reqid, STATUS_CODE.FAILURE);
            if (offset >= node.content.length) return void sftp.status(reqid, STATUS_CODE.EOF);
            sftp.data(reqid, node.content.subarray(offset, offset + length));
          });
          sftp.on('CLOSE', (reqid, handle) => {
            handles.delete(handle.readUInt32BE(0));
            sftp.status(reqid, STATUS_CODE.OK);
          });
          for (const refused of ['WRITE', 'MKDIR', 'RENAME', 'REMOVE', 'RMDIR', 'SETSTAT', 'FSETSTAT'] as const) {
            sftp.on(refused, (reqid: number) => sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED));
          }
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const knownHosts = path.join(keyDir, 'known_hosts');
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey.public}\n`);
  return {
    port,
    location: (root) => `sftp://hostile@127.0.0.1:${port}${root}`,
    env: { COFFER_SFTP_PASSWORD: 'anything', COFFER_SFTP_KNOWN_HOSTS: knownHosts, COFFER_SFTP_KEY: '' },
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        fs.rmSync(keyDir, { recursive: true, force: true });
        server.close(() => resolve());
        // Open sessions would keep close() waiting.
        for (const client of clients) client.end();
      }),
  };
}
