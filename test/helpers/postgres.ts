// A real PostgreSQL for the server and database-dump tests: Debian's binaries, a fresh cluster in a
// temporary directory, run as the unprivileged `postgres` user and listening on loopback (and a socket
// in that directory) only. One cluster per test file (initdb takes a second or two); each test gets its
// own database in it.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const BIN = process.env.COFFER_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const USER = 'postgres';

export interface PostgresServer {
  readonly port: number;
  /** The directory of its Unix socket, where the superuser `coffer` is always trusted. */
  readonly socketDir: string;
  /** Runs SQL with psql as `coffer` through the socket; returns what it prints (unaligned, tuples only). */
  psql(database: string, sql: string): string;
  /** A new empty database; returns its URL. */
  createDatabase(): Promise<string>;
  stop(): void;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function asPostgres(command: string, args: string[]): void {
  const r = spawnSync('runuser', ['-u', USER, '--', path.join(BIN, command), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} failed (${r.status}): ${r.stderr || r.stdout}`);
}

export function postgresAvailable(): boolean {
  return fs.existsSync(path.join(BIN, 'initdb'));
}

/** `hostAuth`: how TCP connections authenticate (default trust; scram-sha-256 to test passwords). */
export async function startPostgres(options: { hostAuth?: 'trust' | 'scram-sha-256' } = {}): Promise<PostgresServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  fs.mkdirSync(data);
  execFileSync('chown', ['-R', `${USER}:`, dir]);
  asPostgres('initdb', ['-D', data, '--auth-local=trust', `--auth-host=${options.hostAuth ?? 'trust'}`, '-U', 'coffer', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  // fsync off: a test cluster that loses power is thrown away anyway.
  asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-h 127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`, 'start']);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    spawnSync('runuser', ['-u', USER, '--', path.join(BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // A test process that ends any way at all takes its cluster with it: an exit, or a signal (a test
  // runner's timeout, Ctrl-C), after which it exits as the signal would have made it.
  process.on('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      stop();
      process.kill(process.pid, signal);
    });
  }
  const admin = `postgres://coffer@127.0.0.1:${port}/postgres`;
  return {
    port,
    socketDir: dir,
    psql(database, sql) {
      const r = spawnSync(path.join(BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', 'coffer', '-d', database, '-At'], { input: sql, encoding: 'utf8', maxBuffer: 1 << 28 });
      if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr}`);
      return r.stdout;
    },
    async createDatabase() {
      const name = `t_${crypto.randomBytes(6).toString('hex')}`;
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://coffer@127.0.0.1:${port}/${name}`;
    },
    stop,
  };
}
