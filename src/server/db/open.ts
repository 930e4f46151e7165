// Opens the server's database: SQLite in the data directory by default, PostgreSQL when a database URL
// is given. Everything above this module talks to Kysely and does not care which.
import fs from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { migrateToLatest, type DatabaseKind } from './migrations.ts';
import type { Database } from './schema.ts';
import { nodeSqliteDialect } from './sqlite-dialect.ts';

export interface ServerDatabase {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseKind;
  /** The PostgreSQL URL, for pg-boss; undefined on SQLite. */
  readonly url?: string;
  close(): Promise<void>;
}

export const SQLITE_FILE = 'server.db';

// PostgreSQL's bigint (OID 20) comes back from pg as a string, to keep precision past 2^53. Our bigints
// are times in milliseconds and byte counts, far below that, so they are numbers here as on SQLite.
const INT8_OID = 20;
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export async function openServerDatabase(options: { dataDir: string; databaseUrl?: string; poolSize?: number }): Promise<ServerDatabase> {
  let result: ServerDatabase;
  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10, types: pgTypes });
    // An idle client that loses its connection (database restart) must not crash the server.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    result = { db, kind: 'postgres', url: options.databaseUrl, close: () => db.destroy() };
  } else {
    fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const db = new Kysely<Database>({ dialect: nodeSqliteDialect({ file: path.join(options.dataDir, SQLITE_FILE) }) });
    result = { db, kind: 'sqlite', close: () => db.destroy() };
  }
  try {
    await migrateToLatest(result.db as Kysely<unknown>, result.kind);
  } catch (err) {
    await result.close();
    throw err;
  }
  return result;
}
