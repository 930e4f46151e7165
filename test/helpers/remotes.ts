// The three kinds of store as the CLI reaches them: a local directory, a bucket on s3rver and a directory
// on OpenSSH's sshd, with the environment a `coffer` child process needs for each. Servers start once
// per test file (call in before()) and every repository gets its own prefix or directory.
import crypto from 'node:crypto';
import path from 'node:path';
import { startS3Server, type S3Server } from './s3-server.ts';
import { startSshd, type SshServer } from './sshd.ts';
import { openStore } from '../../src/store/open-store.ts';
import { RetryStore } from '../../src/store/retry.ts';
import type { Store } from '../../src/store/store.ts';

export type StoreKind = 'local' | 's3' | 'sftp';

export interface Remotes {
  /** Environment for coffer child processes (S3 credentials, SFTP key and known_hosts). */
  readonly env: Record<string, string>;
  /** A fresh repository location of that kind (local ones under `dir`). */
  location(kind: StoreKind, dir: string): string;
  /** A store for a location, opened with the same credentials and retries as the CLI's (for tests that look inside). */
  open(location: string): Store;
  readonly s3: S3Server;
  readonly sshd: SshServer;
  stop(): Promise<void>;
}

export async function startRemotes(): Promise<Remotes> {
  const [s3, sshd] = await Promise.all([startS3Server('lifecycle'), startSshd()]);
  const env = {
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    COFFER_SFTP_KEY: sshd.keyPath,
    COFFER_SFTP_KNOWN_HOSTS: sshd.knownHostsPath,
  };
  const unique = (): string => crypto.randomBytes(4).toString('hex');
  return {
    env,
    s3,
    sshd,
    location(kind, dir) {
      if (kind === 's3') return `s3:${s3.endpoint}/${s3.bucket}/${unique()}`;
      if (kind === 'sftp') return `sftp://${sshd.user}@${sshd.host}:${sshd.port}${path.join(sshd.dir, `repo-${unique()}`)}`;
      return path.join(dir, `repo-${unique()}`);
    },
    open(location) {
      // Retried as the CLI's stores are: an idle keep-alive connection that the server closed is normal.
      const store = openStore(location, { s3: { env }, sftp: { env } });
      return location.startsWith('s3:') || location.startsWith('sftp:') ? new RetryStore(store, { baseDelay: 50 }) : store;
    },
    stop: async () => {
      await Promise.all([s3.stop(), sshd.stop()]);
    },
  };
}
