// A repository in a directory reached over SFTP (a NAS, a server, a storage box). Uploads go to
// <root>/tmp/ and are renamed into place: SFTP v3 rename refuses an existing target (OpenSSH
// implements it with link() + unlink()), so an object is never overwritten and a dropped connection
// never leaves a half-written object under its real name. posix-rename@openssh.com is not used on
// purpose: it overwrites. The server must prove its identity with a host key from known_hosts
// (sftp-host-key.ts). Credentials are found as ssh finds them: ssh-agent, ~/.ssh/config (Host aliases,
// HostName, User, Port, IdentityFile, IdentityAgent; ssh-config.ts), the default keys, and
// COFFER_SFTP_KEY / COFFER_SFTP_PASSWORD on top.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import type { AuthMethod, Client, ServerHostKeyAlgorithm, SFTPWrapper } from 'ssh2';
import { hostKeyPolicy } from './sftp-host-key.ts';
import { TMP_DIR, belongsTo, checkFolder, checkObjectName, checkObjectSize, FOLDER_MODE, isSubfolder, OBJECT_MODE, plausibleSize, type Folder, type ForeignObjectHandler } from './layout.ts';
import { sftpTarget, type SshTarget } from './ssh-config.ts';
import { StoreError, alreadyStored, pastEnd, type ByteRange, type ObjectInfo, type PutOptions, type Store } from './store.ts';
import { NETWORK_ERROR_CODES } from './network-errors.ts';

/** Transfers are split into requests of this size (OpenSSH takes up to 255 KiB), several in flight. */
const CHUNK = 255 * 1024;
const IN_FLIGHT = 8;
/** ssh2's default host key algorithms, in its order of preference. */
const HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Keys ssh tries when neither COFFER_SFTP_KEY nor ~/.ssh/config names one (security keys aside). */
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export interface SftpStoreOptions {
  /**
   * Where SSH_AUTH_SOCK (the ssh-agent), COFFER_SFTP_KEY (a private key file), COFFER_SFTP_PASSWORD and
   * COFFER_SFTP_KNOWN_HOSTS are read. Default process.env.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Holds .ssh/config, the default keys (.ssh/id_ed25519, …) and .ssh/known_hosts (unless
   * COFFER_SFTP_KNOWN_HOSTS names another file). Default os.homedir().
   */
  readonly homeDir?: string;
  /** Milliseconds to wait for the SSH handshake. Default 20 s. */
  readonly connectTimeout?: number;
  /** Told about each listed entry that is not a repository object (skipped). */
  readonly onForeign?: ForeignObjectHandler;
}

interface Session {
  readonly client: SftpClient;
  readonly sftp: SFTPWrapper;
}

/** The ways to log in, in the order they are tried, and how each is named in messages. */
interface Credentials {
  readonly methods: AuthMethod[];
  readonly tried: string[];
}

export class SftpStore implements Store {
  readonly location: string;
  private readonly target: SshTarget;
  private readonly options: SftpStoreOptions;
  private readonly onForeign: ForeignObjectHandler;
  private session: Promise<Session> | undefined;

  constructor(location: string, options: SftpStoreOptions = {}) {
    const { target, display } = sftpTarget(location, options.homeDir);
    this.target = target;
    this.options = options;
    this.onForeign = options.onForeign ?? (() => {});
    this.location = display;
  }

  /** The remote path of a name, which must be an object name of the layout. */
  private file(name: string, action: string): string {
    checkObjectName(name, action);
    return path.posix.join(this.target.root, name);
  }

  /** The remote path of a folder that a listing walks (the layout's folder or one of its sub-folders). */
  private folderPath(dir: string): string {
    return path.posix.join(this.target.root, dir);
  }

  private get env(): Readonly<Record<string, string | undefined>> {
    return this.options.env ?? process.env;
  }

  private get homeDir(): string {
    return this.options.homeDir ?? os.homedir();
  }

  /**
   * Every way to log in that is at hand, in ssh's order: COFFER_SFTP_KEY, the ssh-agent (IdentityAgent
   * or SSH_AUTH_SOCK), the IdentityFiles of ~/.ssh/config (else the default keys), then
   * COFFER_SFTP_PASSWORD. Keys protected by a passphrase are left to the agent.
   */
  private async credentials(): Promise<Credentials> {
    const env = this.env;
    const home = this.homeDir;
    const username = this.target.user;
    const methods: AuthMethod[] = [];
    const tried: string[] = [];
    const skipped: string[] = [];
    const shown = (file: string): string => (file.startsWith(home + path.sep) ? `~/${path.relative(home, file)}` : file);
    const addKey = async (file: string, required: boolean): Promise<void> => {
      let data: Buffer;
      try {
        data = await fs.readFile(file);
      } catch (err) {
        // A key named in COFFER_SFTP_KEY must be there; the others are only tried, as by ssh.
        if (required) throw new StoreError('denied', `connecting to ${this.location}: cannot read the SSH key ${file} (${(err as NodeJS.ErrnoException).code})`);
        return;
      }
      const key = ssh2.utils.parseKey(data);
      if (key instanceof Error) {
        skipped.push(/encrypted|passphrase/i.test(key.message) ? `${shown(file)} needs its passphrase (load it into ssh-agent: ssh-add ${shown(file)})` : `${shown(file)} is not a private key Coffer can read (${key.message})`);
        return;
      }
      methods.push({ type: 'publickey', username, key } as AuthMethod);
      tried.push(shown(file));
    };
    if (env.COFFER_SFTP_KEY) await addKey(env.COFFER_SFTP_KEY, true);
    const agent = this.target.identityAgent === 'none' ? undefined : (this.target.identityAgent ?? env.SSH_AUTH_SOCK);
    if (agent) {
      // ssh ignores an agent that has gone away; so does Coffer, saying so if nothing else works.
      if (await isSocket(agent)) {
        methods.push({ type: 'agent', username, agent } as AuthMethod);
        tried.push('the keys of ssh-agent');
      } else {
        skipped.push(`${this.target.identityAgent ? 'IdentityAgent' : 'SSH_AUTH_SOCK'} names ${agent}, where no ssh-agent listens`);
      }
    }
    const keyFiles = env.COFFER_SFTP_KEY || this.target.identityFiles.length > 0 ? this.target.identityFiles : DEFAULT_KEYS.map((name) => path.join(home, '.ssh', name));
    for (const file of keyFiles) await addKey(file, false);
    if (env.COFFER_SFTP_PASSWORD) {
      methods.push({ type: 'password', username, password: env.COFFER_SFTP_PASSWORD } as AuthMethod);
      tried.push('the password of COFFER_SFTP_PASSWORD');
    }
    if (methods.length === 0) {
      const why = skipped.length > 0 ? skipped.join('; ') : `no ssh-agent (SSH_AUTH_SOCK) and no key in ${shown(path.join(home, '.ssh'))}`;
      throw new StoreError('denied', `connecting to ${this.location}: no SSH credentials: ${why}; load a key into ssh-agent, or set COFFER_SFTP_KEY or COFFER_SFTP_PASSWORD`);
    }
    return { methods, tried };
  }

  /** The open connection, opened on first use and again after it was lost. */
  private connect(): Promise<Session> {
    if (!this.session) {
      const session = this.open(() => {
        if (this.session === session) this.session = undefined;
      });
      this.session = session;
      session.catch(() => {
        if (this.session === session) this.session = undefined;
      });
    }
    return this.session;
  }

  private async open(onLost: () => void): Promise<Session> {
    const { hostName: host, port, alias, proxy } = this.target;
    if (proxy) {
      throw new StoreError('permanent', `connecting to ${this.location}: ~/.ssh/config reaches ${alias} through ${proxy}, which Coffer does not follow; use a host it can reach directly`);
    }
    const { methods, tried } = await this.credentials();
    const hostKeys = await hostKeyPolicy({ env: this.env, homeDir: this.homeDir, host, port, location: this.location });
    // ssh2 only says 'Host denied'; the reason is kept to be thrown instead.
    let refused: StoreError | undefined;
    const known = (algorithm: ServerHostKeyAlgorithm): boolean => hostKeys.knownTypes.has(keyTypeOfAlgorithm(algorithm));
    const client = new SftpClient('coffer', { error: onLost, end: onLost, close: onLost });
    // Nagle's algorithm makes every small request wait for a delayed ACK: 40 ms per stat instead of 0.1.
    const sock = net.connect({ host, port, noDelay: true });
    let sftp: SFTPWrapper;
    try {
      sftp = await client.connect({
        host,
        port,
        sock,
        username: this.target.user,
        authHandler: methods,
        readyTimeout: this.options.connectTimeout ?? 20_000,
        // Asking for a known key type first keeps a host known by, say, its ECDSA key from looking changed.
        algorithms: { serverHostKey: [...HOST_KEY_ALGORITHMS.filter(known), ...HOST_KEY_ALGORITHMS.filter((algorithm) => !known(algorithm))] },
        // Without hostHash ssh2 passes the key in wire format. The verifier must return undefined and
        // answer through the callback: ssh2 would take any returned value, even a promise, as a verdict.
        hostVerifier: (key: Buffer, verify: (valid: boolean) => void): void => {
          void hostKeys.verify(key).then((error) => {
            refused = error;
            verify(!error);
          });
        },
        // Without keepalives a silently dead link (NAS asleep, Wi-Fi gone) would hang calls forever.
        keepaliveInterval: 10_000,
        keepaliveCountMax: 3,
      });
    } catch (err) {
      sock.destroy();
      if (refused) throw refused;
      if (AUTH_FAILED.test((err as Error).message)) throw new AuthRefused(`tried ${tried.join(', ')} for user ${this.target.user}`, err);
      throw err;
    }
    // ssh2-sftp-client adds three listeners to its (unexposed) ssh2 client per call in flight, and
    // many concurrent calls are normal here.
    (client as unknown as { client: Client }).client.setMaxListeners(0);
    return { client, sftp };
  }

  /** Runs `op` on the connection and turns whatever it throws into a StoreError about `action`. */
  private async run<T>(action: string, op: (session: Session) => Promise<T>): Promise<T> {
    const pending = this.connect();
    let session: Session | undefined;
    try {
      session = await pending;
      return await op(session);
    } catch (err) {
      // A stopped call (PutOptions.signal) is not the connection's failure: the connection stays.
      if ((err as Error).name === 'AbortError') throw err;
      const error = describeSftpError(err, action);
      if (error.kind === 'transient' && session) {
        // Drop a connection that failed so the next call (a retry) opens a fresh one.
        if (this.session === pending) this.session = undefined;
        session.client.end().catch(() => undefined);
      }
      throw error;
    }
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    const action = `writing ${name} to ${this.location}`;
    const final = this.file(name, action);
    const signal = options?.signal;
    return this.run(action, async ({ client, sftp }) => {
      // Checking first also saves uploading an object another backup already stored.
      const existing = await statOrUndefined(client, final);
      if (existing) return alreadyStored(action, existing.size, data.length);
      const tmp = this.file(`${TMP_DIR}/${crypto.randomBytes(12).toString('hex')}.tmp`, action);
      try {
        await writeFile(sftp, tmp, Buffer.from(data.buffer, data.byteOffset, data.byteLength), signal);
        // Stopped while the bytes went: the temporary file goes, nothing takes the name.
        signal?.throwIfAborted();
      } catch (err) {
        await client.delete(tmp, true).catch(() => undefined);
        if (signal?.aborted) throw err;
        throw (await diskFull(sftp, tmp, data.length)) ? new StoreError('no-space', `${action}: the server's disk is full`, { cause: err }) : err;
      }
      try {
        await inDirectory(sftp, final, () => client.rename(tmp, final));
        return true;
      } catch (err) {
        await client.delete(tmp, true).catch(() => undefined);
        // The rename fails when another writer created the object after our check.
        const winner = await statOrUndefined(client, final);
        if (winner) return alreadyStored(action, winner.size, data.length);
        throw err;
      }
    });
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const action = `reading ${name} from ${this.location}`;
    const file = this.file(name, action);
    if (range) checkObjectSize(name, range.length, action);
    return this.run(action, async ({ sftp }) => {
      const handle = await call<Buffer>((cb) => sftp.open(file, 'r', cb));
      try {
        let size = range?.length;
        if (size === undefined) {
          size = (await call<{ size: number }>((cb) => sftp.fstat(handle, cb))).size;
          // Before anything is allocated: the server's answer may be absurd.
          checkObjectSize(name, size, action);
        }
        const buf = Buffer.allocUnsafe(size);
        const complete = await readAt(sftp, handle, buf, range?.offset ?? 0);
        if (!complete) throw range ? pastEnd(action, range) : new StoreError('permanent', `${action}: object is shorter than expected (truncated?)`);
        return buf;
      } finally {
        await call((cb) => sftp.close(handle, cb)).catch(() => undefined);
      }
    });
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    const action = `checking ${name} in ${this.location}`;
    const file = this.file(name, action);
    return this.run(action, async ({ client }) => {
      const st = await statOrUndefined(client, file);
      return st && { name, size: st.size, modified: st.modifyTime };
    });
  }

  /** Objects under the folder; entries the server lists that are not objects of it are reported and skipped. */
  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const action = `listing ${dir} in ${this.location}`;
    yield* this.walk(checkFolder(dir, action), dir, action);
  }

  private async *walk(folder: Folder, dir: string, action: string): AsyncGenerator<ObjectInfo> {
    const entries = await this.run(action, async ({ sftp }) => {
      try {
        return await readDirectory(sftp, this.folderPath(dir), action);
      } catch (err) {
        if (isNotFound(err)) return [];
        throw err;
      }
    });
    for (const entry of entries) {
      // The server chooses these names and types: they are checked before they go into any path.
      const name = `${dir}/${entry.filename}`;
      const type = entry.mode & S_IFMT;
      if (type === S_IFDIR) {
        if (isSubfolder(folder, name)) yield* this.walk(folder, name, action);
        else this.onForeign(name, 'a directory that is not part of the repository layout');
      } else if (type !== S_IFREG) {
        this.onForeign(name, type === S_IFLNK ? 'a symbolic link (a repository holds regular files only)' : 'not a regular file');
      } else if (!belongsTo(folder, name)) {
        this.onForeign(name, 'not an object name of a Coffer repository');
      } else if (!plausibleSize(name, entry.size)) {
        this.onForeign(name, `listed with an impossible size (${entry.size})`);
      } else {
        yield entry.modifyTime === undefined ? { name, size: entry.size } : { name, size: entry.size, modified: entry.modifyTime };
      }
    }
  }

  async delete(name: string): Promise<void> {
    const action = `deleting ${name} from ${this.location}`;
    const file = this.file(name, action);
    await this.run(action, ({ client }) => client.delete(file, true));
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    const open = await session?.catch(() => undefined);
    await open?.client.end();
  }
}

/** Every way to log in failed; the message lists them. */
class AuthRefused extends Error {
  constructor(tried: string, cause: unknown) {
    super(tried, { cause });
  }
}

async function isSocket(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isSocket();
  } catch {
    return false;
  }
}

/** The key type a host key algorithm uses: the RSA signature variants all use ssh-rsa keys. */
function keyTypeOfAlgorithm(algorithm: ServerHostKeyAlgorithm): string {
  return algorithm.startsWith('rsa-sha2-') ? 'ssh-rsa' : algorithm;
}

/** Adapts one of ssh2's callback methods to a promise. */
function call<T = void>(start: (cb: (err: Error | undefined | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value))));
}

/**
 * Runs `step` over [0, size) in chunks with several in flight, since one request at a time waits a
 * round trip each; stops early and returns false when a step returns false.
 */
async function inChunks(size: number, step: (offset: number, length: number) => Promise<boolean>): Promise<boolean> {
  let next = 0;
  let complete = true;
  const worker = async (): Promise<void> => {
    while (complete && next < size) {
      const offset = next;
      next = Math.min(offset + CHUNK, size);
      if (!(await step(offset, next - offset))) complete = false;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return complete;
}

/** Fills `buf` from `position` of the open file; false if the file ends first. */
function readAt(sftp: SFTPWrapper, handle: Buffer, buf: Buffer, position: number): Promise<boolean> {
  return inChunks(buf.length, async (offset, length) => {
    for (let done = 0; done < length; ) {
      // ssh2 answers a read at the end of the file with 0 bytes, not an error.
      const n = await call<number>((cb) => sftp.read(handle, buf, offset + done, length - done, position + offset + done, cb));
      if (n === 0) return false;
      done += n;
    }
    return true;
  });
}

/**
 * Creates `file` (and its directory) holding `data`. Not ssh2-sftp-client's put(): when the disk
 * fills up it can resolve with the file cut short. Here every write's answer is checked, and so is
 * the size before the file is closed.
 */
async function writeFile(sftp: SFTPWrapper, file: string, data: Buffer, signal?: AbortSignal): Promise<void> {
  const handle = await inDirectory(sftp, file, () => call<Buffer>((cb) => sftp.open(file, 'w', { mode: OBJECT_MODE }, cb)));
  try {
    await inChunks(data.length, async (offset, length) => {
      // A stopped upload sends no more chunks (the caller deletes the file).
      signal?.throwIfAborted();
      await call((cb) => sftp.write(handle, data, offset, length, offset, cb));
      return true;
    });
    const { size } = await call<{ size: number }>((cb) => sftp.fstat(handle, cb));
    if (size !== data.length) throw new Error(`the server kept ${size} of ${data.length} bytes`);
  } catch (err) {
    await call((cb) => sftp.close(handle, cb)).catch(() => undefined);
    throw err;
  }
  // Some servers report failed writes only when the file is closed.
  await call((cb) => sftp.close(handle, cb));
}

async function statOrUndefined(client: SftpClient, file: string): Promise<{ size: number; modifyTime: number } | undefined> {
  try {
    return await client.stat(file);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** File types in SFTP attributes (the permission field's S_IFMT bits, as stat has them). */
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** No repository folder holds this many entries; a server that lists more is refused, not followed for ever. */
const MAX_DIRECTORY_ENTRIES = 1_000_000;

/**
 * A remote directory's entries with their types and sizes, read batch by batch. A server that never
 * ends the listing is stopped at MAX_DIRECTORY_ENTRIES.
 */
async function readDirectory(sftp: SFTPWrapper, dir: string, action: string): Promise<{ filename: string; mode: number; size: number; modifyTime?: number }[]> {
  const handle = await call<Buffer>((cb) => sftp.opendir(dir, cb));
  const entries: { filename: string; mode: number; size: number; modifyTime?: number }[] = [];
  try {
    for (;;) {
      const batch = await new Promise<FileEntryLike[] | undefined>((resolve, reject) =>
        sftp.readdir(handle, (err, list) => (err ? ((err as { code?: unknown }).code === SFTP_EOF ? resolve(undefined) : reject(err)) : resolve(list as FileEntryLike[]))),
      );
      if (!batch) return entries;
      for (const { filename, attrs } of batch) {
        // The server's clock, whole seconds: prune measures writer markers' ages with it.
        const mtime = Number(attrs?.mtime);
        entries.push({ filename: String(filename), mode: Number(attrs?.mode ?? 0), size: Number(attrs?.size), ...(Number.isFinite(mtime) ? { modifyTime: mtime * 1000 } : {}) });
      }
      if (entries.length > MAX_DIRECTORY_ENTRIES) throw new StoreError('permanent', `${action}: the server lists more than ${MAX_DIRECTORY_ENTRIES} entries in ${dir}`);
    }
  } finally {
    await call((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

interface FileEntryLike {
  readonly filename: unknown;
  readonly attrs?: { readonly mode?: unknown; readonly size?: unknown; readonly mtime?: unknown };
}

/** Runs `op`, which writes `file`; if its directory is missing, creates it and runs `op` again. */
async function inDirectory<T>(sftp: SFTPWrapper, file: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await makeDirectory(sftp, path.posix.dirname(file));
    return op();
  }
}

/** mkdir -p that tolerates concurrent puts creating the same directories. */
async function makeDirectory(sftp: SFTPWrapper, dir: string): Promise<void> {
  try {
    await call((cb) => sftp.mkdir(dir, { mode: FOLDER_MODE }, cb));
  } catch (err) {
    if (isNotFound(err)) {
      await makeDirectory(sftp, path.posix.dirname(dir));
      return makeDirectory(sftp, dir);
    }
    // OpenSSH answers 'Failure' when the directory exists, perhaps just made by another put.
    const st = await call<{ isDirectory(): boolean }>((cb) => sftp.stat(dir, cb)).catch(() => undefined);
    if (!st?.isDirectory()) throw err;
  }
}

/**
 * OpenSSH reports a full disk as a bare 'Failure', like many other errors; the statvfs extension
 * tells whether there was room for the object.
 */
async function diskFull(sftp: SFTPWrapper, file: string, size: number): Promise<boolean> {
  try {
    const fsInfo = await call<{ f_bavail: number; f_frsize: number }>((cb) => sftp.ext_openssh_statvfs(path.posix.dirname(file), cb));
    return fsInfo.f_bavail * fsInfo.f_frsize < size;
  } catch {
    return false;
  }
}

// SFTP status codes (ssh2 puts them in err.code) and the names ssh2-sftp-client uses for some of them.
const SFTP_EOF = 1;
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

function codeOf(err: unknown): string | number | undefined {
  return (err as { code?: string | number }).code;
}

function isNotFound(err: unknown): boolean {
  const code = codeOf(err);
  return code === NO_SUCH_FILE || code === 'ENOENT';
}

// Messages of ssh2 and ssh2-sftp-client when the connection is gone or never came up.
const CONNECTION_LOST = /No response from server|Unexpected (end|close) event|No SFTP connection|connection (lost|closed)|Timed out while waiting for handshake|Remote host (refused|has reset)|Address lookup failed|Not connected/i;
const AUTH_FAILED = /authentication methods failed|Cannot parse privateKey|passphrase/i;

/** Turns an ssh2 / ssh2-sftp-client error into a one-line StoreError that names the action and location. */
export function describeSftpError(err: unknown, action: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = codeOf(err);
  const message = ((err as Error).message ?? String(err)).replace(/\s+/g, ' ').trim();
  const options = { cause: err };
  if (err instanceof AuthRefused || AUTH_FAILED.test(message)) {
    return new StoreError('denied', `${action}: the server refused the SSH key or password (${message}); check the user name and keys, COFFER_SFTP_KEY or COFFER_SFTP_PASSWORD`, options);
  }
  if ((typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) || CONNECTION_LOST.test(message)) {
    return new StoreError('transient', `${action}: connection lost or refused (${message})`, options);
  }
  if (isNotFound(err)) return new StoreError('not-found', `${action}: not found`, options);
  if (code === PERMISSION_DENIED || code === 'EACCES') return new StoreError('denied', `${action}: permission denied (${message})`, options);
  return new StoreError('permanent', `${action}: ${message}`, options);
}
