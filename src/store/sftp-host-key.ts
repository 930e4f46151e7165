// Which SSH servers the SFTP store trusts: those whose host key is in a known_hosts file, like
// ssh with StrictHostKeyChecking. Without this check anyone who can redirect the connection (DNS,
// ARP, a rogue Wi-Fi) would receive the backups and could serve forged ones. The file is
// $COFFER_SFTP_KNOWN_HOSTS if set, else ~/.ssh/known_hosts. COFFER_SFTP_KNOWN_HOSTS=accept-new is
// trust on first use for throwaway setups: an unknown host is accepted and its key appended to
// ~/.ssh/known_hosts; a known host whose key changed is still refused.
import fs from 'node:fs/promises';
import path from 'node:path';
import { checkHostKey, fingerprint, keyTypeOf, knownHostLine, knownHostName, knownKeyTypes, parseKnownHosts, type HostKeyVerdict, type KnownHost } from './known-hosts.ts';
import { StoreError } from './store.ts';

const ACCEPT_NEW = 'accept-new';

export interface HostKeyPolicy {
  /** The key types known for the server, to ask it for one of those first. */
  readonly knownTypes: ReadonlySet<string>;
  /**
   * Checks the key the server presented: undefined when it is trusted, else the error to fail with
   * (also when recording a new key fails: it never rejects).
   */
  verify(key: Buffer): Promise<StoreError | undefined>;
}

export interface HostKeyOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly homeDir: string;
  readonly host: string;
  readonly port: number;
  /** The store's location, which starts every message. */
  readonly location: string;
}

/** Appends of accept-new are serialized, so that two connections to a new host record it once. */
let appending: Promise<unknown> = Promise.resolve();

/** Reads the known_hosts file the environment names and returns the checks for one connection. */
export async function hostKeyPolicy({ env, homeDir, host, port, location }: HostKeyOptions): Promise<HostKeyPolicy> {
  const setting = env.COFFER_SFTP_KNOWN_HOSTS || undefined;
  const acceptNew = setting === ACCEPT_NEW;
  const file = setting && !acceptNew ? setting : path.join(homeDir, '.ssh', 'known_hosts');
  const shown = file.startsWith(homeDir + path.sep) ? `~/${path.relative(homeDir, file)}` : file;
  const name = knownHostName(host, port);
  const prefix = `connecting to ${location}`;
  const entries = await readKnownHosts(file, prefix);

  const describe = (key: Buffer): string => `${keyTypeOf(key)} ${fingerprint(key)}`;
  const refusal = (verdict: HostKeyVerdict, key: Buffer): StoreError | undefined => {
    switch (verdict.status) {
      case 'known':
        return undefined;
      case 'revoked':
        return new StoreError('denied', `${prefix}: the host key of ${name} (${describe(key)}) is marked @revoked in ${shown} line ${verdict.entry.line}; refusing to connect`);
      case 'changed':
        return new StoreError(
          'denied',
          `${prefix}: WARNING: the host key of ${name} has CHANGED: ${shown} line ${verdict.entry.line} holds ${describe(verdict.entry.key)} but the server presents ` +
            `${describe(key)}; someone may be intercepting the connection (man in the middle); refusing to connect. If the server's key really changed, ` +
            `replace line ${verdict.entry.line} with its new key`,
        );
      case 'unknown': {
        const scan = `ssh-keyscan ${port === 22 ? '' : `-p ${port} `}${host} >> ${shown}`;
        return new StoreError('denied', `${prefix}: the host key of ${name} (${describe(key)}) is not in ${shown}; check it and add it (${scan})`);
      }
    }
  };

  return {
    knownTypes: knownKeyTypes(entries, name),
    async verify(key) {
      const verdict = checkHostKey(entries, name, key);
      if (!acceptNew || verdict.status !== 'unknown') return refusal(verdict, key);
      const recorded = appending
        .then(async () => {
          // Read again: another connection may have recorded this host since the file was read.
          const now = checkHostKey(await readKnownHosts(file, prefix), name, key);
          if (now.status !== 'unknown') return refusal(now, key);
          await appendLine(file, knownHostLine(name, key), prefix);
          return undefined;
        })
        // Reading or writing the file failed.
        .catch((error: StoreError) => error);
      appending = recorded;
      return recorded;
    },
  };
}

async function readKnownHosts(file: string, prefix: string): Promise<KnownHost[]> {
  try {
    return parseKnownHosts(await fs.readFile(file, 'utf8'));
  } catch (err) {
    // No file yet means no host is known, as for ssh.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new StoreError('denied', `${prefix}: cannot read the known hosts file ${file} (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
}

/** Appends a line, creating the file (and ~/.ssh) readable only by the user, as ssh does. */
async function appendLine(file: string, line: string, prefix: string): Promise<void> {
  try {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const existing = await fs.readFile(file, 'utf8').catch(() => '');
    const separator = existing && !existing.endsWith('\n') ? '\n' : '';
    await fs.appendFile(file, `${separator}${line}\n`, { mode: 0o600 });
  } catch (err) {
    throw new StoreError('denied', `${prefix}: cannot record the host key in ${file} (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
}
