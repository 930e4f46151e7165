// What every part of the server shares: the database, the job queue, the event log, the configuration.
// Built once in server.ts (or by a test) and handed to each plugin.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DatabaseKind } from './db/migrations.ts';
import type { Alert, Database } from './db/schema.ts';
import type { EventLog } from './events/event-log.ts';
import type { JobQueue } from './queue/queue.ts';
import type { ServerSettings } from './config.ts';

export interface ServerContext {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseKind;
  readonly queue: JobQueue;
  readonly events: EventLog;
  readonly settings: ServerSettings;
  /** Encrypts storage credentials at rest. */
  readonly secret: Buffer;
  readonly now: () => number;
  readonly log: Logger;
  /** Told of every new alert (email through the notification module). */
  readonly alertSinks: ((alert: Alert) => void)[];
}
