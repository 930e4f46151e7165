// The server's data layer: the node:sqlite dialect, and versioned migrations on SQLite and PostgreSQL
// (concurrent start-ups migrate once; a database from a newer server is refused).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { SCHEMA_VERSION } from '../src/server/db/migrations.ts';
import { openServerDatabase, type ServerDatabase } from '../src/server/db/open.ts';
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
