// Kysely's SQLite dialect over Node's built-in node:sqlite, so the server needs no native module.
// Kysely expects better-sqlite3's statement shape (parameters as one array, a `reader` flag); this
// adapter is that shape over `DatabaseSync`.
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';

export interface SqliteOptions {
  /** A file path, or ':memory:'. */
  readonly file: string;
  /** How long a writer waits for another process's lock before failing (ms). */
  readonly busyTimeoutMs?: number;
}

function statementOf(db: DatabaseSync, sql: string): SqliteStatement {
  const stmt = db.prepare(sql);
  const params = (values: ReadonlyArray<unknown>): SQLInputValue[] => values.map(toSqlite);
  return {
    // Statements that return rows have result columns (SELECT, and INSERT … RETURNING).
    reader: stmt.columns().length > 0,
    all: (values) => stmt.all(...params(values)),
    run: (values) => {
      const r = stmt.run(...params(values));
      return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
    },
    iterate: (values) => stmt.iterate(...params(values)) as IterableIterator<unknown>,
  };
}

/** node:sqlite takes no booleans or Dates; the schema stores flags as 0/1 and times as epoch milliseconds. */
function toSqlite(value: unknown): SQLInputValue {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value as SQLInputValue;
}

export function nodeSqliteDatabase(options: SqliteOptions): SqliteDatabase {
  const db = new DatabaseSync(options.file);
  db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 15_000)}`);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA foreign_keys = ON');
  return { close: () => db.close(), prepare: (sql) => statementOf(db, sql) };
}

export function nodeSqliteDialect(options: SqliteOptions): SqliteDialect {
  return new SqliteDialect({ database: async () => nodeSqliteDatabase(options) });
}
