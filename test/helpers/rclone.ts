// Debian's rclone for the REST store tests: `rclone serve restic` over HTTP(S) on a loopback port,
// serving a temporary directory, optionally append-only, behind a password or TLS.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnTied } from './tied-child.ts';

export const RCLONE = 'rclone';

export interface RcloneServerOptions {
  readonly appendOnly?: boolean;
  /** Basic authentication with this user and password. */
  readonly auth?: { readonly user: string; readonly pass: string };
  /** PEM files: serve HTTPS with this certificate and key. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface RcloneServer {
  /** 'http(s)://127.0.0.1:PORT/', ending in '/'. */
  readonly url: string;
  /** The directory served; removed by stop(). */
  readonly dir: string;
  stop(): Promise<void>;
}

/** Throws a clear message when rclone is not installed. */
export async function requireRclone(): Promise<void> {
  const found = await Promise.any((process.env.PATH ?? '').split(':').map((dir) => fs.access(path.join(dir, RCLONE)))).then(
    () => true,
    () => false,
  );
  if (!found) throw new Error('rclone not found on PATH; install it with: apt-get install -y rclone');
}

/**
 * An empty rclone configuration file: rclone then neither reads the user's nor says on every start that
 * it found none. Tests set RCLONE_CONFIG to it.
 */
export async function emptyRcloneConfig(dir: string): Promise<string> {
  const file = path.join(dir, 'rclone.conf');
  await fs.writeFile(file, '');
  return file;
}

export async function startRcloneServer(options: RcloneServerOptions = {}): Promise<RcloneServer> {
  await requireRclone();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-rclone-'));
  const args = [
    'serve',
    'restic',
    '--addr',
    '127.0.0.1:0',
    ...(options.appendOnly ? ['--append-only'] : []),
    ...(options.auth ? ['--user', options.auth.user, '--pass', options.auth.pass] : []),
    ...(options.tls ? ['--cert', options.tls.cert, '--key', options.tls.key] : []),
    path.join(dir, 'served'),
  ];
  const child = spawnTied(RCLONE, args, { ...process.env, RCLONE_CONFIG: await emptyRcloneConfig(dir) });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /Serving restic REST API on (https?:\/\/\S+)/.exec(log);
      if (match) resolve(match[1]!.endsWith('/') ? match[1]! : `${match[1]}/`);
    });
    child.once('exit', (code) => reject(new Error(`rclone serve restic exited with code ${code} before serving: ${log.trim()}`)));
  }).catch(async (err: unknown) => {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  });
  let stopped: Promise<void> | undefined;
  return {
    url,
    dir: path.join(dir, 'served'),
    stop() {
      stopped ??= (async () => {
        child.stdin.destroy();
        await exited;
        await fs.rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
