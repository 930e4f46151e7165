// The server's data layer: the node:sqlite dialect, and versioned migrations on SQLite and PostgreSQL
// (concurrent start-ups migrate once; a database from a newer server is refused).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { migrator, SCHEMA_VERSION, type DatabaseKind } from '../src/server/db/migrations.ts';
import { openServerDatabase, SQLITE_FILE, type ServerDatabase } from '../src/server/db/open.ts';
import { nodeSqliteDialect } from '../src/server/db/sqlite-dialect.ts';
import { startPostgres, type PostgresServer } from './helpers/postgres.ts';

let postgres: PostgresServer;
before(async () => {
  postgres = await startPostgres();
});
after(() => postgres.stop());

async function applied(d: ServerDatabase): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(d.db);
  return rows.rows.map((r) => r.name);
}

async function markNewerMigration(d: ServerDatabase): Promise<void> {
  await sql`insert into kysely_migration (name, timestamp) values ('9999-from-the-future', '2030-01-01T00:00:00.000Z')`.execute(d.db);
}

test('SQLite: rows, RETURNING, transactions and rollbacks through the node:sqlite adapter', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-db-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const d = await openServerDatabase({ dataDir: dir });
  try {
    const first = await d.db.insertInto('events').values({ type: 'a', data: '{}', at: 1, user_id: null, agent_id: null }).returning('id').executeTakeFirstOrThrow();
    const second = await d.db.insertInto('events').values({ type: 'b', data: '{}', at: 2, user_id: null, agent_id: null }).returning('id').executeTakeFirstOrThrow();
    assert.equal(second.id, first.id + 1);
    await assert.rejects(
      d.db.transaction().execute(async (trx) => {
        await trx.insertInto('settings').values({ key: 'k', value: 'v' }).execute();
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(await d.db.selectFrom('settings').selectAll().executeTakeFirst(), undefined);
    for await (const row of d.db.selectFrom('events').select('type').orderBy('id').stream()) assert.ok(['a', 'b'].includes(row.type));
    assert.equal((await applied(d)).length, SCHEMA_VERSION);
    await markNewerMigration(d);
  } finally {
    await d.close();
  }
  await assert.rejects(openServerDatabase({ dataDir: dir }), /upgraded by a newer coffer server/);
});

test('SQLite: a query on the database (not the transaction) inside a transaction fails at once, naming the mistake; others wait their turn', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-db-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const d = await openServerDatabase({ dataDir: dir });
  try {
    // One connection: such a query would wait for the transaction it is part of, forever.
    const outcome = d.db.transaction().execute(async (trx) => {
      await trx.insertInto('settings').values({ key: 'inside', value: '1' }).execute();
      await d.db.selectFrom('settings').selectAll().execute();
    });
    const timeout = new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000).unref());
    assert.match(String(await Promise.race([outcome.then(() => 'resolved', (err: Error) => err.message), timeout])), /inside a transaction.*use the transaction/);
    assert.equal(await d.db.selectFrom('settings').selectAll().executeTakeFirst(), undefined, 'the transaction was rolled back');
    // Queries from elsewhere while a transaction runs wait for it, then see its writes.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tx = d.db.transaction().execute(async (trx) => {
      await trx.insertInto('settings').values({ key: 'k', value: 'v' }).execute();
      await held;
    });
    await new Promise((resolve) => setImmediate(resolve));
    const outside = d.db.selectFrom('settings').select('value').where('key', '=', 'k').executeTakeFirst();
    release();
    await tx;
    assert.equal((await outside)?.value, 'v');
    // After the transaction, the same async path uses the database as usual.
    await d.db.transaction().execute(async (trx) => trx.insertInto('settings').values({ key: 'k2', value: 'v' }).execute());
    assert.equal((await d.db.selectFrom('settings').selectAll().execute()).length, 2);
  } finally {
    await d.close();
  }
});

test('PostgreSQL: three servers starting at once migrate the database once; bigints come back as numbers', async () => {
  const url = await postgres.createDatabase();
  const dbs = await Promise.all([1, 2, 3].map(() => openServerDatabase({ dataDir: '/nonexistent', databaseUrl: url })));
  try {
    assert.equal((await applied(dbs[0]!)).length, SCHEMA_VERSION);
    await dbs[0]!.db.insertInto('users').values({ id: 'u', email: 'e', password_hash: 'h', role: 'admin', created_at: 2 ** 42, password_changed_at: 1 }).execute();
    const user = await dbs[1]!.db.selectFrom('users').selectAll().executeTakeFirstOrThrow();
    assert.equal(user.created_at, 2 ** 42);
    await markNewerMigration(dbs[0]!);
  } finally {
    await Promise.all(dbs.map((d) => d.close()));
  }
  await assert.rejects(openServerDatabase({ dataDir: '/nonexistent', databaseUrl: url }), /upgraded by a newer coffer server/);
});

/** A database left at the first migration with a user and an agent in it, as a server of that version left it. */
async function atFirstVersion(db: Kysely<unknown>, kind: DatabaseKind): Promise<void> {
  try {
    const { error } = await migrator(db, kind).migrateTo('0001-initial');
    if (error) throw error;
    await sql`insert into users (id, email, password_hash, role, created_at, password_changed_at) values ('u', 'e', 'h', 'admin', 1, 1)`.execute(db);
    await sql`insert into agents (id, user_id, api_key_id, hostname, os, version, capacity, status, last_heartbeat_at, registered_at) values ('a', 'u', 'k', 'nas', 'Linux', '0.1.0', 2, 'online', 1, 1)`.execute(db);
  } finally {
    await db.destroy();
  }
}

test('the agent-labels migration gives the agents of an older database no labels, on SQLite and PostgreSQL', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-db-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  await atFirstVersion(new Kysely<unknown>({ dialect: nodeSqliteDialect({ file: path.join(dir, SQLITE_FILE) }) }), 'sqlite');
  const url = await postgres.createDatabase();
  await atFirstVersion(new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) }), 'postgres');
  for (const options of [{ dataDir: dir }, { dataDir: '/nonexistent', databaseUrl: url }]) {
    const d = await openServerDatabase(options);
    try {
      assert.equal((await applied(d)).length, SCHEMA_VERSION);
      assert.deepEqual((await d.db.selectFrom('agents').select(['id', 'labels']).execute()).map((r) => ({ ...r })), [{ id: 'a', labels: '[]' }], d.kind);
    } finally {
      await d.close();
    }
  }
});
