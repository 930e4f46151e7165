// A thin typed layer over node:sqlite: statements are prepared once per SQL text, rows come back under
// the camelCase names the SELECT gives them, and multi-statement changes run under the write lock.
import type { DatabaseSync, SQLInputValue, StatementResultingChanges, StatementSync } from 'node:sqlite';

/**
 * Runs `fn` in a BEGIN IMMEDIATE transaction: the write lock is taken before anything is read, so a
 * read-check-write sequence is atomic across processes (a second process waits for the busy timeout
 * instead of deciding on stale data). Called inside an open transaction, `fn` simply joins it.
 */
export function immediate<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) return fn();
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

export class Sql {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  private prepare(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** The first row, typed by the caller: the SELECT's column aliases must match `T`. */
  get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.prepare(sql).get(...params) as T | undefined;
  }

  all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.prepare(sql).all(...params) as T[];
  }

  run(sql: string, ...params: SQLInputValue[]): StatementResultingChanges {
    return this.prepare(sql).run(...params);
  }

  transaction<T>(fn: () => T): T {
    return immediate(this.db, fn);
  }
}
