// `coffer server`: the fleet server (see docs/SERVER.md).
import { Command } from 'commander';
import { loadServerSettings, ServerConfigError } from '../../server/config.ts';
import { describeError, isRetryable, UsageError } from '../errors.ts';
import { interruptSignal } from '../interrupt.ts';
import { printLine } from '../output.ts';
import { readPassphrase } from '../passphrase.ts';

interface ServerOptions {
  readonly listen?: string;
  readonly dataDir?: string;
  readonly databaseUrl?: string;
  readonly config?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly trustProxy?: boolean;
  readonly logFile?: string;
  readonly localAgent?: boolean;
  readonly capacity: string;
  readonly passwordFile?: string;
  readonly passwordCommand?: string;
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text) ?? (/^\d{1,5}$/.test(text) ? [text, undefined, '', text] : null);
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535)) throw new UsageError(`--listen takes HOST:PORT or PORT (e.g. 127.0.0.1:8470, 0.0.0.0:8470, 8470), not "${text}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Errors of the server and agent that carry a message for the user, reported as such (one line, exit 1). */
export async function reported<T>(work: () => Promise<T>, expected: readonly (new (...args: never[]) => Error)[]): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (expected.some((type) => err instanceof type)) throw new UsageError((err as Error).message);
    throw err;
  }
}

export function capacityOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--capacity takes a whole number from 1 to 64, not "${text}"`);
  return n;
}

export function serverCommand(): Command {
  return new Command('server')
    .description('run the fleet server: users, agents, plans, schedules, history, alerts, reports (SQLite by default; PostgreSQL with DATABASE_URL)')
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8470; $COFFER_SERVER_HOST/$COFFER_SERVER_PORT)')
    .option('--data-dir <dir>', 'server data: SQLite database, secret key, logs (default $COFFER_SERVER_DATA_DIR or ~/.local/share/coffer/server)')
    .option('--database-url <url>', 'PostgreSQL (postgres://…) instead of SQLite; several servers may share it (default $DATABASE_URL)')
    .option('--config <file>', 'settings file (YAML; default $COFFER_SERVER_CONFIG)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM); needs --tls-key')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--trust-proxy', 'behind a reverse proxy: trust X-Forwarded-For and X-Forwarded-Proto')
    .option('--log-file <file>', 'log to this file (rotated by size) instead of stdout')
    .option('--local-agent', "also run an agent for this machine (enrolled with the first administrator's key)")
    .option('--capacity <n>', 'backups the local agent runs at once', '2')
    .option('--password-file <file>', "the local agent's repository passphrase, from a file")
    .option('--password-command <command>', "the local agent's repository passphrase, from a command")
    .action(async (options: ServerOptions) => {
      // Loaded here: the server brings Fastify, Kysely, pg and pg-boss, which other commands do not need.
      const { MigrationError } = await import('../../server/db/migrations.ts');
      await reported(() => serve(options), [ServerConfigError, MigrationError]);
    });
}

async function serve(options: ServerOptions): Promise<void> {
  const listen = options.listen ? parseListen(options.listen) : {};
  const settings = loadServerSettings({
    ...(options.config ? { file: options.config } : {}),
    flags: { ...listen, dataDir: options.dataDir, databaseUrl: options.databaseUrl, tlsCert: options.tlsCert, tlsKey: options.tlsKey, trustProxy: options.trustProxy, logFile: options.logFile },
  });
  const { runServer } = await import('../../server/run-server.ts');
  const interrupt = interruptSignal();
  try {
    await runServer(settings, {
      signal: interrupt.signal,
      describeError,
      ...(options.localAgent ? { localAgent: { capacity: capacityOf(options.capacity), passphrase: () => readPassphrase(options), describeError, isRetryable } } : {}),
      onListening: (url) => printLine(`coffer server listening on ${url} (${settings.databaseUrl ? 'PostgreSQL' : `SQLite in ${settings.dataDir}`}); Ctrl-C stops it`),
    });
  } finally {
    interrupt.dispose();
  }
}
