// A real MariaDB for the dump tests, from Debian's package: a fresh instance in a temporary directory
// run by the unprivileged mysql user, reachable on a socket in that directory only (no network).
// (PostgreSQL: postgres.ts.)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function run(command: string, args: string[], options: { user?: string; input?: string | Buffer } = {}): string {
  const [cmd, argv] = options.user ? ['runuser', ['-u', options.user, '--', command, ...args]] : [command, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', input: options.input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** A directory the service user owns, inside a temporary one everybody may traverse. */
function serviceDir(prefix: string, user: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  run('chown', [`${user}:`, dir]);
  return dir;
}

export function mariadbAvailable(): boolean {
  return fs.existsSync('/usr/sbin/mariadbd') && fs.existsSync('/usr/bin/mariadb-install-db');
}

export interface MariaDb {
  readonly socket: string;
  /** The mariadb client as root on the socket; returns its output. */
  sql(db: string | undefined, statements: string | Buffer): string;
  stop(): Promise<void>;
}

export async function startMariaDb(): Promise<MariaDb> {
  const dir = serviceDir('coffer-mariadb-', 'mysql');
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db'], { user: 'mysql' });
  const server = spawn(
    'runuser',
    ['-u', 'mysql', '--', '/usr/sbin/mariadbd', '--no-defaults', `--datadir=${data}`, `--socket=${socket}`, '--skip-networking', `--pid-file=${path.join(dir, 'pid')}`, `--log-error=${path.join(dir, 'log')}`, '--innodb-flush-log-at-trx-commit=0'],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(socket)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`mariadbd did not start: ${fs.readFileSync(path.join(dir, 'log'), 'utf8')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      server.kill('SIGTERM');
      spawnSync('pkill', ['-TERM', '-F', path.join(dir, 'pid')]);
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    })());
  process.on('exit', () => {
    spawnSync('pkill', ['-KILL', '-F', path.join(dir, 'pid')]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    socket,
    sql: (db, statements) => run('mariadb', ['--no-defaults', `--socket=${socket}`, '-u', 'root', '--batch', '--skip-column-names', ...(db ? [db] : [])], { input: statements }),
    stop,
  };
}
