// Versioned migrations of the server database, one list for SQLite and PostgreSQL. Kysely's Migrator
// records what ran in kysely_migration and takes a lock (an advisory lock on PostgreSQL), so several
// server processes starting at once on one database migrate it exactly once. Released migrations are
// never edited: a change is a new entry at the end.
import { sql, type Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';

export type DatabaseKind = 'sqlite' | 'postgres';

type Step = (db: Kysely<unknown>, kind: DatabaseKind) => Promise<void>;

/** An auto-incrementing id, whose order is the order of insertion (events are read back by it). */
function serialType(kind: DatabaseKind) {
  return kind === 'postgres' ? ('bigserial' as const) : ('integer' as const);
}

const v1: Step = async (db, kind) => {
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('password_changed_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
  await db.schema
    .createTable('invitations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('email', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('used_by', 'text')
    .execute();
  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('login_throttle')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('window_started_at', 'bigint', (c) => c.notNull())
    .addColumn('locked_until', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema
    .createTable('agents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('api_key_id', 'text', (c) => c.notNull())
    .addColumn('hostname', 'text', (c) => c.notNull())
    .addColumn('os', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('capacity', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('last_heartbeat_at', 'bigint', (c) => c.notNull())
    .addColumn('registered_at', 'bigint', (c) => c.notNull())
    .addColumn('upload_limit', 'bigint')
    .addColumn('download_limit', 'bigint')
    .execute();
  await db.schema.createIndex('agents_user').on('agents').column('user_id').execute();
  await db.schema
    .createTable('destinations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('credentials', 'text')
    .addColumn('upload_limit', 'bigint')
    .addColumn('download_limit', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_test_at', 'bigint')
    .addColumn('last_test_error', 'text')
    .addUniqueConstraint('destinations_user_name', ['user_id', 'name'])
    .execute();
  await db.schema
    .createTable('plans')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('spec', 'text', (c) => c.notNull())
    .addColumn('schedule', 'text')
    .addColumn('timezone', 'text')
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('plans_user_name', ['user_id', 'name'])
    .execute();
  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('plan_id', 'text', (c) => c.references('plans.id').onDelete('set null'))
    .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('max_retries', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('stage', 'text')
    .addColumn('bytes_total', 'bigint', (c) => c.notNull())
    .addColumn('bytes_done', 'bigint', (c) => c.notNull())
    .addColumn('files_total', 'bigint', (c) => c.notNull())
    .addColumn('files_done', 'bigint', (c) => c.notNull())
    .addColumn('bytes_added', 'bigint', (c) => c.notNull())
    .addColumn('snapshot_id', 'text')
    .addColumn('error', 'text')
    .addColumn('progress', 'text')
    .execute();
  await db.schema.createIndex('jobs_user_requested').on('jobs').columns(['user_id', 'requested_at']).execute();
  await db.schema.createIndex('jobs_agent_status').on('jobs').columns(['agent_id', 'status']).execute();
  // One unfinished job per plan, whatever the code does (one run per plan, as in the daemon).
  await sql`create unique index jobs_one_live_per_plan on jobs (plan_id) where status in ('pending', 'running', 'paused', 'interrupted')`.execute(db);
  await db.schema
    .createTable('job_destinations')
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('destination_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('bytes_done', 'bigint', (c) => c.notNull())
    .addColumn('speed', 'double precision', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('finished_at', 'bigint')
    .addPrimaryKeyConstraint('job_destinations_pk', ['job_id', 'destination_id'])
    .execute();
  await db.schema
    .createTable('job_logs')
    .addColumn('id', serialType(kind), (c) => (kind === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('level', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('job_logs_job').on('job_logs').columns(['job_id', 'id']).execute();
  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('acknowledged_by', 'text')
    .addColumn('acknowledged_at', 'bigint')
    .addColumn('resolved_at', 'bigint')
    .execute();
  // One open alert per condition: raising it again while open changes nothing.
  await sql`create unique index alerts_one_open on alerts (user_id, kind, subject_id) where resolved_at is null`.execute(db);
  await db.schema
    .createTable('events')
    .addColumn('id', serialType(kind), (c) => (kind === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('user_id', 'text')
    .addColumn('agent_id', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_at').on('events').column('at').execute();
};

/** Agent labels (a JSON array of strings): a scaled-out plan's workers are the owner's agents with a label. */
const v2: Step = async (db) => {
  await db.schema.alterTable('agents').addColumn('labels', 'text', (c) => c.notNull().defaultTo('[]')).execute();
};

/**
 * A plan's repository passphrase, if its owner gives it to the server (sealed with the server's key), so
 * the server applies the plan's retention on its own S3 destinations; and on each job the retention's
 * report: the agent's (JSON), and the server's ('due' until it has run, then JSON).
 */
const v3: Step = async (db) => {
  await db.schema.alterTable('plans').addColumn('passphrase', 'text').execute();
  await db.schema.alterTable('jobs').addColumn('retention', 'text').execute();
  await db.schema.alterTable('jobs').addColumn('server_retention', 'text').execute();
};

/**
 * Scaled-out fleet runs on PostgreSQL live in the database, not in one server's memory (their shards are
 * pg-boss jobs): any server answers their workers and coordinator. A claim row says which agent holds a
 * shard's attempt (only it may heartbeat or finish it) and how far it got.
 */
const v4: Step = async (db) => {
  await db.schema
    .createTable('fleet_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('coordinator', 'text', (c) => c.notNull())
    .addColumn('workers', 'text', (c) => c.notNull())
    .addColumn('destinations', 'text', (c) => c.notNull())
    .addColumn('sizes', 'text', (c) => c.notNull())
    .addColumn('outcomes', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .execute();
  await db.schema.createIndex('fleet_runs_job').on('fleet_runs').column('job_id').execute();
  await db.schema
    .createTable('fleet_claims')
    .addColumn('claim', 'text', (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull().references('fleet_runs.id').onDelete('cascade'))
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('files_done', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_done', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('fleet_claims_agent').on('fleet_claims').column('agent_id').execute();
};

/** Every migration, in order. The names sort in that order, which Kysely requires. */
const STEPS: readonly [string, Step][] = [
  ['0001-initial', v1],
  ['0002-agent-labels', v2],
  ['0003-server-retention', v3],
  ['0004-fleet-runs', v4],
];

export const SCHEMA_VERSION = STEPS.length;

export function migrator(db: Kysely<unknown>, kind: DatabaseKind): Migrator {
  const migrations: Record<string, Migration> = Object.fromEntries(STEPS.map(([name, step]) => [name, { up: (trx: Kysely<unknown>) => step(trx, kind) }]));
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Brings the database up to SCHEMA_VERSION; refuses a database migrated by a newer server. */
export async function migrateToLatest(db: Kysely<unknown>, kind: DatabaseKind): Promise<void> {
  const { error, results } = await migrator(db, kind).migrateToLatest();
  if (!error) return;
  const message = (error as Error).message;
  // Kysely's words for a database that has migrations this code does not know.
  if (/previously executed migration .* is missing/.test(message)) {
    throw new MigrationError(`the server database was upgraded by a newer coffer server (${message.replace(/^corrupted migrations: /, '')}); run that version or a newer one`);
  }
  const failed = results?.find((r) => r.status === 'Error')?.migrationName;
  throw new MigrationError(`database migration ${failed ?? ''} failed: ${message}`, { cause: error });
}
