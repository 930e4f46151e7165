// Kysely's SQLite dialect over Node's built-in node:sqlite, so the server needs no native module.
// Kysely expects better-sqlite3's statement shape (parameters as one array, a `reader` flag); this
// adapter is that shape over `DatabaseSync`.
//
// There is one connection, taken by one query or transaction at a time. A query made on the database
// instead of on the transaction, inside that transaction's callback, would wait for the transaction it
// belongs to: forever. The driver here tells that query apart (the transaction's async context) and
// fails it at once with what to do; queries from anywhere else wait their turn as before.
import { AsyncLocalStorage } from 'node:async_hooks';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { SqliteAdapter, SqliteDialect, type DatabaseConnection, type DialectAdapter, type Driver, type SqliteDatabase, type SqliteStatement, type TransactionSettings } from 'kysely';

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

/** Marks the async context of a transaction's callback, so a query made from it can be recognised. */
const transactionContext = new AsyncLocalStorage<object>();

/** Kysely's SQLite driver with the one-at-a-time rule kept here, where a query from inside a transaction can be refused. */
class OneConnectionDriver implements Driver {
  private readonly inner: Driver;
  private turn: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;
  /** The open transaction's mark, while one is open. */
  private transaction: object | undefined;

  constructor(inner: Driver) {
    this.inner = inner;
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.transaction && transactionContext.getStore() === this.transaction) {
      throw new Error('a query on the database inside a transaction: use the transaction (trx) there, or the query waits for the transaction it is part of');
    }
    const previous = this.turn;
    let release!: () => void;
    this.turn = new Promise<void>((resolve) => (release = resolve));
    await previous;
    this.release = release;
    return this.inner.acquireConnection();
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    try {
      await this.inner.releaseConnection(connection);
    } finally {
      const release = this.release;
      this.release = undefined;
      release?.();
    }
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const mark = {};
    // Set before the first await, so the callback (run after this resolves) inherits it.
    transactionContext.enterWith(mark);
    this.transaction = mark;
    try {
      await this.inner.beginTransaction(connection, settings);
    } catch (err) {
      this.transaction = undefined;
      throw err;
    }
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    this.transaction = undefined;
    await this.inner.commitTransaction(connection);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    this.transaction = undefined;
    await this.inner.rollbackTransaction(connection);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** Kysely takes one connection at a time when the adapter says so; this dialect does that in its driver instead. */
class OneConnectionAdapter extends SqliteAdapter {
  override get supportsMultipleConnections(): boolean {
    return true;
  }
}

class NodeSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    return new OneConnectionDriver(super.createDriver());
  }

  override createAdapter(): DialectAdapter {
    return new OneConnectionAdapter();
  }
}

export function nodeSqliteDialect(options: SqliteOptions): SqliteDialect {
  return new NodeSqliteDialect({ database: async () => nodeSqliteDatabase(options) });
}
