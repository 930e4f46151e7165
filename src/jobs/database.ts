// Opening the job database: one SQLite file in the data directory, shared by every coffer process of
// the user (CLI runs, the daemon, `coffer status` while a backup runs).
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { migrate } from './migrations.ts';
import { makeDirectories } from '../store/make-directories.ts';

export const JOB_DATABASE_FILE = 'jobs.db';

/** How long a process waits for another one's write lock before giving up with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 15_000;

export function openJobDatabase(file: string): DatabaseSync {
  const db = new DatabaseSync(file, { timeout: BUSY_TIMEOUT_MS, enableForeignKeyConstraints: true });
  try {
    // WAL lets `coffer status` read while a backup writes; NORMAL sync is durable enough for job state
    // (a power cut may lose the last heartbeat, never corrupt the file).
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Opens (creating if needed) the job database of a data directory. */
export function openJobDatabaseIn(dataDir: string): DatabaseSync {
  // Private to the user: job errors and logs name their files and hosts.
  makeDirectories(dataDir, 0o700);
  const file = path.join(dataDir, JOB_DATABASE_FILE);
  // SQLite creates the file (and its -wal and -shm files, which copy its mode) as the umask allows,
  // 0644 mostly: made 0600 first, and an older one is made private too.
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
  return openJobDatabase(file);
}
