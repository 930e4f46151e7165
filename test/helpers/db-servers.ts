// Real database servers for the dump tests, from Debian's packages, each a fresh instance in a temporary
// directory run by its unprivileged system user and reachable on loopback or a socket in that directory
// only: PostgreSQL (initdb + pg_ctl) and MariaDB (mariadb-install-db + mariadbd).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const PG_BIN = '/usr/lib/postgresql/15/bin';

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function run(command: string, args: string[], options: { user?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): string {
  const [cmd, argv] = options.user ? ['runuser', ['-u', options.user, '--', command, ...args]] : [command, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', input: options.input, env: { ...process.env, ...options.env }, maxBuffer: 1 << 28 });
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

export function postgresAvailable(): boolean {
  return fs.existsSync(path.join(PG_BIN, 'initdb'));
}

export interface Postgres {
  readonly port: number;
  readonly socketDir: string;
  /** psql as the superuser `coffer`, on database `db`; returns its output. */
  psql(db: string, sql: string): string;
  stop(): void;
}

/**
 * A cluster with superuser `coffer` (trusted on the socket) and password authentication (scram) over
 * TCP on 127.0.0.1.
 */
export async function startPostgres(): Promise<Postgres> {
  const dir = serviceDir('coffer-pg-', 'postgres');
  const data = path.join(dir, 'data');
  run(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'coffer', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '-E', 'UTF8', '--locale=C'], { user: 'postgres' });
  const port = await freePort();
  run(path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-h 127.0.0.1 -p ${port} -k ${dir} -c fsync=off`, 'start'], { user: 'postgres' });
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    spawnSync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  return {
    port,
    socketDir: dir,
    psql: (db, sql) => run(path.join(PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', 'coffer', '-d', db, '-At'], { input: sql }),
    stop,
  };
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
