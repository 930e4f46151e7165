import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { JOB_DATABASE_FILE, openJobDatabase } from '../src/jobs/database.ts';
import { JobStore } from '../src/jobs/job-store.ts';
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion } from '../src/jobs/migrations.ts';
import { statusReport } from '../src/jobs/status.ts';
import { tempDir } from './helpers/jobs.ts';

const V1_FIXTURE = fs.readFileSync(new URL('./fixtures/jobs-db-v1.sql', import.meta.url), 'utf8');

/** Tables, indexes and every column with its type, constraints and default: what a schema is. */
function schemaOf(db: DatabaseSync): unknown {
  const objects = db
    .prepare("SELECT type, name, tbl_name AS tableName FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { type: string; name: string; tableName: string }[];
  return objects.map((o) => ({
    ...o,
    columns: o.type === 'table' ? db.prepare('SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)').all(o.name) : [],
    indexed: o.type === 'index' ? db.prepare('SELECT name FROM pragma_index_info(?)').all(o.name) : [],
  }));
}

function v1Database(dir: string): string {
  const file = path.join(dir, JOB_DATABASE_FILE);
  const db = new DatabaseSync(file);
  db.exec(V1_FIXTURE);
  assert.equal(schemaVersion(db), 1);
  db.close();
  return file;
}

test('a fresh database gets the latest schema', (t) => {
  const db = openJobDatabase(path.join(tempDir(t), JOB_DATABASE_FILE));
  t.after(() => db.close());
  assert.equal(schemaVersion(db), LATEST_SCHEMA_VERSION);
  const tables = (schemaOf(db) as { type: string; name: string }[]).filter((o) => o.type === 'table').map((o) => o.name);
  assert.deepEqual(tables, ['destinations', 'job_destinations', 'job_events', 'job_runs', 'jobs', 'plan_destinations', 'plans']);
});

test('a v1 database upgrades to the same schema as a fresh one, keeping its data', (t) => {
  const dir = tempDir(t);
  const fresh = openJobDatabase(path.join(tempDir(t), JOB_DATABASE_FILE));
  t.after(() => fresh.close());
  const upgraded = openJobDatabase(v1Database(dir));
  t.after(() => upgraded.close());

  assert.equal(schemaVersion(upgraded), LATEST_SCHEMA_VERSION);
  assert.deepEqual(schemaOf(upgraded), schemaOf(fresh));
  const jobs = upgraded.prepare('SELECT id, status, error, retry_count AS retries FROM jobs ORDER BY id').all();
  assert.deepEqual(
    jobs.map((j) => ({ ...j })),
    [
      { id: 1, status: 'completed', error: null, retries: 0 },
      { id: 2, status: 'failed', error: 'connection reset by peer', retries: 3 },
      // v1 allowed two live runs of 'docs': the older one is interrupted so that only one stays live.
      { id: 3, status: 'interrupted', error: null, retries: 0 },
      { id: 4, status: 'running', error: null, retries: 0 },
    ],
  );
  const events = upgraded.prepare("SELECT job_id AS jobId, kind FROM job_events WHERE kind = 'interrupted'").all();
  assert.deepEqual(events.map((e) => ({ ...e })), [{ jobId: 3, kind: 'interrupted' }]);
});

test('the history of a v1 database shows in the status of each destination', (t) => {
  const dir = tempDir(t);
  v1Database(dir);
  const store = JobStore.open(dir, { now: () => 1767225604000 + 60_000 });
  t.after(() => store.close());
  const destinations = statusReport(store).destinations.map((d) => [d.destination.name, d.lastSuccess?.jobId, d.lastSuccess?.ageMs]);
  assert.deepEqual(destinations, [
    ['b2', 1, 60_000],
    ['ssd', 1, 60_000],
  ]);
  // New jobs continue after the old ids.
  const run = store.acquirePlanRun(store.plan('photos')!.id);
  assert.equal(run.jobId, 5);
});

test('migrating again changes nothing', (t) => {
  const dir = tempDir(t);
  const file = v1Database(dir);
  openJobDatabase(file).close();
  const db = openJobDatabase(file);
  t.after(() => db.close());
  const before = { schema: schemaOf(db), events: db.prepare('SELECT count(*) AS n FROM job_events').get() };
  assert.equal(migrate(db), LATEST_SCHEMA_VERSION);
  assert.deepEqual({ schema: schemaOf(db), events: db.prepare('SELECT count(*) AS n FROM job_events').get() }, before);
});

test('a database from a newer coffer is refused, not damaged', (t) => {
  const file = path.join(tempDir(t), JOB_DATABASE_FILE);
  const db = new DatabaseSync(file);
  db.exec('PRAGMA user_version = 99');
  db.close();
  assert.throws(
    () => openJobDatabase(file),
    new RegExp(`schema v99, newer than this coffer understands \\(v${LATEST_SCHEMA_VERSION}\\); upgrade coffer`),
  );
});
