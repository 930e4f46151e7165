// Versioned schema of the job database. The version lives in SQLite's `PRAGMA user_version`; each
// migration runs in its own BEGIN IMMEDIATE transaction and re-reads the version inside it, so two
// processes opening an old database at once upgrade it exactly once. Released migrations are never
// edited: a change is a new entry at the end. Times are milliseconds since the epoch.
import type { DatabaseSync } from 'node:sqlite';
import { immediate } from './sql.ts';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'destinations, plans, jobs with one set of progress counters, event log',
    sql: `
      CREATE TABLE destinations (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        location TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE plans (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE plan_destinations (
        plan_id INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        destination_id INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
        PRIMARY KEY (plan_id, destination_id)
      );
      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plan_id INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN
          ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'interrupted')),
        priority INTEGER NOT NULL DEFAULT 0,
        bytes_total INTEGER NOT NULL DEFAULT 0,
        bytes_done INTEGER NOT NULL DEFAULT 0,
        files_total INTEGER NOT NULL DEFAULT 0,
        files_done INTEGER NOT NULL DEFAULT 0,
        speed REAL NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        last_heartbeat INTEGER,
        error TEXT,
        retry_count INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        host TEXT
      );
      CREATE INDEX jobs_plan_status ON jobs (plan_id, status);
      CREATE TABLE job_events (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT
      );
      CREATE INDEX job_events_job ON job_events (job_id, id);
    `,
  },
  {
    version: 2,
    description: 'per-destination progress, runs with their errors, run ownership, retry time, one live run per plan',
    sql: `
      ALTER TABLE jobs ADD COLUMN stage TEXT;
      ALTER TABLE jobs ADD COLUMN owner TEXT;
      ALTER TABLE jobs ADD COLUMN next_attempt_at INTEGER;

      CREATE TABLE job_destinations (
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        destination_id INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed')),
        bytes_total INTEGER NOT NULL DEFAULT 0,
        bytes_done INTEGER NOT NULL DEFAULT 0,
        files_total INTEGER NOT NULL DEFAULT 0,
        files_done INTEGER NOT NULL DEFAULT 0,
        speed REAL NOT NULL DEFAULT 0,
        started_at INTEGER,
        finished_at INTEGER,
        updated_at INTEGER,
        error TEXT,
        PRIMARY KEY (job_id, destination_id)
      );
      CREATE INDEX job_destinations_done ON job_destinations (destination_id, status, finished_at);

      CREATE TABLE job_runs (
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        run INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT CHECK (outcome IN ('completed', 'failed', 'cancelled', 'interrupted')),
        error TEXT,
        error_class TEXT,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        PRIMARY KEY (job_id, run)
      );

      -- v1 jobs had no per-destination rows: give each the plan's destinations with the job's
      -- counters, so "last success per destination" still sees the history.
      INSERT INTO job_destinations (job_id, destination_id, status, bytes_total, bytes_done, files_total,
                                    files_done, started_at, finished_at, updated_at, error)
      SELECT j.id, pd.destination_id,
             CASE j.status WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'failed' ELSE 'pending' END,
             j.bytes_total, j.bytes_done, j.files_total, j.files_done, j.started_at, j.finished_at,
             coalesce(j.last_heartbeat, j.finished_at, j.created_at), j.error
      FROM jobs j JOIN plan_destinations pd ON pd.plan_id = j.plan_id;

      -- v1 could hold two live runs of one plan; keep the newest, the others become interrupted,
      -- or the unique index below could not be built.
      CREATE TEMP TABLE superseded AS
        SELECT id FROM jobs
        WHERE status IN ('running', 'paused')
          AND id NOT IN (SELECT max(id) FROM jobs WHERE status IN ('running', 'paused') GROUP BY plan_id);
      INSERT INTO job_events (job_id, at, kind, message)
        SELECT id, CAST(unixepoch('subsec') * 1000 AS INTEGER), 'interrupted',
               'a newer run of the same plan was live when the job database was upgraded'
        FROM superseded;
      UPDATE jobs SET status = 'interrupted' WHERE id IN (SELECT id FROM superseded);
      DROP TABLE superseded;

      -- The last line of defence against two runs of one plan, whatever a caller does.
      CREATE UNIQUE INDEX jobs_one_live_run_per_plan ON jobs (plan_id) WHERE status IN ('running', 'paused');
    `,
  },
  {
    version: 3,
    description: "each run declares how long it may stay silent before others take it for dead (its plan's staleAfter)",
    sql: `
      ALTER TABLE jobs ADD COLUMN stale_after_ms INTEGER;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function schemaVersion(db: DatabaseSync): number {
  return (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
}

/** Brings the database to the latest schema; a no-op when it is there already. Returns the version. */
export function migrate(db: DatabaseSync): number {
  const found = schemaVersion(db);
  if (found > LATEST_SCHEMA_VERSION) {
    throw new Error(
      `the job database has schema v${found}, newer than this coffer understands (v${LATEST_SCHEMA_VERSION}); upgrade coffer`,
    );
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= found) continue;
    immediate(db, () => {
      // Another process may have applied it between our first read and our write lock.
      if (schemaVersion(db) >= migration.version) return;
      db.exec(migration.sql);
      db.exec(`PRAGMA user_version = ${migration.version}`);
    });
  }
  return schemaVersion(db);
}
