// Opens what a server process runs on: the database (migrated), the queue, the event log and the
// storage secret. The CLI's `coffer server` and the tests build the context the same way.
import type { Logger } from 'pino';
import type { ServerSettings } from './config.ts';
import type { ServerContext } from './context.ts';
import { openServerDatabase } from './db/open.ts';
import { EventLog } from './events/event-log.ts';
import { MemoryQueue } from './queue/memory-queue.ts';
import { PgBossQueue } from './queue/pg-boss-queue.ts';
import { loadServerSecret } from './storage/secret-box.ts';

export interface ServerCore {
  readonly ctx: ServerContext;
  close(): Promise<void>;
}

export async function openServerCore(settings: ServerSettings, log: Logger, options: { now?: () => number; eventPollMs?: number } = {}): Promise<ServerCore> {
  const now = options.now ?? Date.now;
  const database = await openServerDatabase({ dataDir: settings.dataDir, ...(settings.databaseUrl ? { databaseUrl: settings.databaseUrl } : {}) });
  const queue = database.url ? new PgBossQueue(database.url) : new MemoryQueue(now);
  const events = new EventLog(database.db, database.kind, { now, ...(options.eventPollMs ? { pollMs: options.eventPollMs } : {}) });
  try {
    await queue.start();
    await events.start();
  } catch (err) {
    await queue.stop().catch(() => {});
    await database.close();
    throw err;
  }
  const ctx: ServerContext = { db: database.db, kind: database.kind, queue, events, settings, secret: loadServerSecret(settings.dataDir, process.env.COFFER_SERVER_SECRET), now, log, alertSinks: [] };
  return {
    ctx,
    async close() {
      await events.stop();
      await queue.stop();
      await database.close();
    },
  };
}
