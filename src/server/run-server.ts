// A running `coffer server`: logging, the database and queue, the fleet, HTTP(S) on the configured
// address, and a graceful shutdown on SIGINT/SIGTERM (not ready at once, finish requests, close agent
// sockets, stop the queue, close the database). With --local-agent it also runs an agent for this very
// machine, enrolled with a key of the first administrator.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import pino, { type Logger } from 'pino';
import { Agent, type AgentOptions } from '../agent/agent.ts';
import { buildApp } from './app.ts';
import { API_KEY_PREFIX, newToken, tokenHash } from './auth/tokens.ts';
import type { ServerSettings } from './config.ts';
import type { ServerContext } from './context.ts';
import { openServerCore } from './core.ts';
import { Fleet } from './fleet.ts';
import { RotatingFile } from './log-file.ts';
import { webRoutes } from './web.ts';

export interface RunServerOptions {
  readonly signal: AbortSignal;
  /** Run an agent for this machine inside the server process. */
  readonly localAgent?: Pick<AgentOptions, 'passphrase' | 'capacity' | 'describeError' | 'isRetryable'>;
  /** The one-line message for a failure of the server's own work (a plan's retention): the CLI's rules. */
  readonly describeError?: (err: unknown) => string;
  /** Told the address once listening. */
  readonly onListening?: (url: string) => void;
}

function makeLogger(settings: ServerSettings): { log: Logger; close: () => void } {
  if (!settings.logFile) return { log: pino({ level: settings.logLevel }), close: () => {} };
  const file = new RotatingFile(path.resolve(settings.logFile), { maxBytes: settings.logMaxBytes, maxFiles: settings.logMaxFiles });
  return { log: pino({ level: settings.logLevel }, file), close: () => file.close() };
}

const LOCAL_KEY_FILE = 'local-agent.key';

/** The local agent's key: made once for the first administrator (waiting until one signs up), kept in the data directory. */
async function localAgentKey(ctx: ServerContext, signal: AbortSignal): Promise<string | undefined> {
  const file = path.join(ctx.settings.dataDir, LOCAL_KEY_FILE);
  for (;;) {
    if (fs.existsSync(file)) {
      const key = fs.readFileSync(file, 'utf8').trim();
      const row = await ctx.db.selectFrom('api_keys').select('revoked_at').where('key_hash', '=', tokenHash(key)).executeTakeFirst();
      if (row && row.revoked_at === null) return key;
    }
    const admin = await ctx.db.selectFrom('users').select('id').where('role', '=', 'admin').orderBy('created_at').executeTakeFirst();
    if (admin) {
      const key = newToken(API_KEY_PREFIX);
      await ctx.db.insertInto('api_keys').values({ id: crypto.randomUUID(), user_id: admin.id, name: `local agent (${os.hostname()})`, prefix: key.slice(0, API_KEY_PREFIX.length + 6), key_hash: tokenHash(key), created_at: ctx.now(), last_used_at: null, revoked_at: null }).execute();
      fs.writeFileSync(file, key, { mode: 0o600 });
      return key;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (signal.aborted) return undefined;
  }
}

export async function runServer(settings: ServerSettings, options: RunServerOptions): Promise<void> {
  const { log, close: closeLog } = makeLogger(settings);
  let ready = false;
  const core = await openServerCore(settings, log);
  const fleet = new Fleet(core.ctx, options.describeError ? { describeError: options.describeError } : {});
  const https = settings.tlsCert && settings.tlsKey ? { cert: fs.readFileSync(settings.tlsCert), key: fs.readFileSync(settings.tlsKey) } : undefined;
  const app = await buildApp(core.ctx, { plugins: [fleet.plugin, (scope) => webRoutes(scope)], ready: () => ready, ...(https ? { https } : {}) });
  const localStop = new AbortController();
  let local: Promise<void> | undefined;
  try {
    await fleet.start();
    const address = await app.listen({ host: settings.host, port: settings.port });
    ready = true;
    log.info({ address, database: core.ctx.kind, queue: core.ctx.queue.name }, 'coffer server listening');
    options.onListening?.(address);
    if (options.localAgent) {
      const localAgent = options.localAgent;
      local = (async () => {
        const key = await localAgentKey(core.ctx, localStop.signal);
        if (!key) return;
        const agent = new Agent({
          server: address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '[::1]'),
          key,
          stateDir: path.join(settings.dataDir, 'local-agent'),
          ...localAgent,
          transport: 'websocket',
          signal: localStop.signal,
          log: (message) => log.info({ component: 'local-agent' }, message),
        });
        await agent.run();
      })().catch((err: Error) => log.error({ err }, 'the local agent stopped'));
    }
    await new Promise<void>((resolve) => {
      if (options.signal.aborted) resolve();
      options.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    log.info('shutting down');
  } finally {
    ready = false;
    localStop.abort();
    await local;
    await fleet.stop();
    await app.close();
    await core.close();
    log.info('stopped');
    closeLog();
  }
}
