// A plan's `sources`: database dumps and commands whose output goes into the snapshot as a file,
// streamed (no temporary copy; the chunk pool bounds memory). Each is a child process whose stdout is
// the file; it must exit 0, or the stream throws and the run fails without committing a snapshot.
//
//   postgres  pg_dump --format=plain (or custom, uncompressed so it deduplicates) of one database
//   mysql     mysqldump (or mariadb-dump) --single-transaction of one database
//   sqlite    sqlite3 FILE .dump: one read transaction, so a database being written is dumped as it
//             was at one moment. (The online-backup API writes a second database file; `.dump` streams.)
//   command   any command's stdout (gbak, pg_dumpall, a custom tool)
//
// Passwords come from passwordCommand/passwordFile into the tool's environment (PGPASSWORD, MYSQL_PWD),
// never onto a command line or into a log.
//
// Interface:
//   streamSources(sources, { log? }) → StreamSource[] for BackupOptions.streams
//   commandStream(name, argv, { env?, tool?, check? }) → StreamSource for any process
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { defaultFileName, type SourceConfig } from '../config/automation.ts';
import type { StreamSource } from '../engine/backup/stream-source.ts';
import { redactString } from '../jobs/redact.ts';
import { childEnvironment } from './child-env.ts';

export class SourceError extends Error {
  override name = 'SourceError';
}

const STDERR_TAIL = 8 * 1024;
/** The end of a `.dump` kept to see whether sqlite3 met an error (it exits 0 regardless). */
const SQLITE_TAIL = 256;

export interface CommandStreamOptions {
  readonly env?: Record<string, string>;
  /** What to call it in messages (pg_dump, the sqlite3 shell). */
  readonly tool?: string;
  /** Looks at the last bytes of the output; returns why they show a failure, if they do. */
  readonly check?: (tail: string) => string | undefined;
  /** What to say when the program is not installed. */
  readonly missing?: string;
}

/** The stdout of a process as a stream source: it throws unless the process exits 0. */
export function commandStream(name: string, argv: readonly string[], options: CommandStreamOptions = {}): StreamSource {
  const tool = options.tool ?? path.basename(argv[0]!);
  return {
    name,
    async *open(stop: AbortSignal): AsyncGenerator<Uint8Array> {
      const child = spawn(argv[0]!, argv.slice(1), { env: childEnvironment(options.env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-STDERR_TAIL)));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
        child.once('error', (error) => resolve({ code: null, signal: null, error }));
        child.once('close', (code, signal) => resolve({ code, signal }));
      });
      let tail = '';
      let finished = false;
      // A dump that prints nothing for a while (pg_dump locking tables) still stops when the run does.
      const onStop = (): void => void stopProcessGroup(child.pid, exited);
      stop.addEventListener('abort', onStop, { once: true });
      try {
        for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
          if (options.check) tail = (tail + chunk.toString('latin1')).slice(-SQLITE_TAIL);
          yield chunk;
        }
        const end = await exited;
        finished = true;
        if (end.error) {
          const notFound = (end.error as NodeJS.ErrnoException).code === 'ENOENT';
          throw new SourceError(notFound ? (options.missing ?? `${tool} is not installed or not on the PATH`) : `${tool} could not be started: ${end.error.message}`);
        }
        const lastLine = redactString(stderr.trim().split('\n').at(-1) ?? '').slice(0, 300);
        if (end.code !== 0) {
          throw new SourceError(`${tool} ${end.code !== null ? `exited with status ${end.code}` : `was killed by ${end.signal}`}${lastLine ? `: ${lastLine}` : ''}`);
        }
        const failure = options.check?.(tail);
        if (failure) throw new SourceError(`${tool} ${failure}${lastLine ? `: ${lastLine}` : ''}`);
      } finally {
        // Stopped early (cancel, shutdown, a failed destination): the dump goes too, with what it started,
        // and the run ends only once it has gone (a job said to be cancelled has no dump left running).
        stop.removeEventListener('abort', onStop);
        if (!finished) await stopProcessGroup(child.pid, exited);
      }
    },
  };
}

/** How long a dump may take to exit after SIGTERM before it gets SIGKILL. */
const TERMINATE_GRACE_MS = 5000;

async function stopProcessGroup(pid: number | undefined, exited: Promise<unknown>): Promise<void> {
  const signalGroup = (signal: NodeJS.Signals): boolean => {
    try {
      process.kill(-pid!, signal);
      return true;
    } catch {
      return false; // Never started, or already gone.
    }
  };
  if (pid === undefined || !signalGroup('SIGTERM')) return;
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'grace over'>((resolve) => (timer = setTimeout(() => resolve('grace over'), TERMINATE_GRACE_MS)));
  const outcome = await Promise.race([exited, graceOver]);
  clearTimeout(timer);
  if (outcome === 'grace over') {
    signalGroup('SIGKILL');
    await exited;
  }
}

async function readSecret(source: { passwordCommand?: string; passwordFile?: string }, what: string): Promise<string | undefined> {
  if (source.passwordFile) {
    try {
      return fs.readFileSync(source.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new SourceError(`cannot read the ${what} password file ${source.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (!source.passwordCommand) return undefined;
  const out: Buffer[] = [];
  const child = spawn('/bin/sh', ['-c', source.passwordCommand], { env: childEnvironment(), stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout.on('data', (d: Buffer) => out.push(d));
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', resolve);
  });
  if (code !== 0) throw new SourceError(`the ${what} passwordCommand failed (exit ${code ?? 'error'}); run it by hand to see why`);
  return Buffer.concat(out).toString('utf8').replace(/\r?\n$/, '');
}

/** A database or user name given to a tool as an argument must not read as an option. */
function operand(value: string, what: string): string {
  if (value.startsWith('-')) throw new SourceError(`the ${what} "${value}" starts with "-"; a dump tool would take it for an option`);
  return value;
}

/** The first program of `candidates` found on the PATH (the first one when none is, for the message). */
function onPath(candidates: readonly string[]): string {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const name of candidates) {
    if (name.includes('/')) return name;
    if (dirs.some((dir) => fs.existsSync(path.join(dir, name)))) return name;
  }
  return candidates[0]!;
}

/** A stream whose arguments or environment need work first (a password to fetch). */
function deferred(name: string, make: () => Promise<StreamSource>): StreamSource {
  return {
    name,
    async *open(stop: AbortSignal) {
      yield* (await make()).open(stop);
    },
  };
}

function sqliteSource(source: Extract<SourceConfig, { type: 'sqlite' }>): StreamSource {
  const name = defaultFileName(source);
  return deferred(name, async () => {
    // sqlite3 creates an empty database for a path that does not exist: refuse that instead.
    if (!fs.statSync(source.path, { throwIfNoEntry: false })?.isFile()) throw new SourceError(`no SQLite database at ${source.path}; check the path`);
    return commandStream(name, [source.command ?? 'sqlite3', '-bail', source.path, '.dump'], {
      tool: 'sqlite3',
      missing: 'the sqlite3 command-line shell is not installed (Debian: apt-get install sqlite3) or not on the PATH',
      // The shell reports errors inside the dump and exits 0; its last line says so.
      check: (tail) => (/ROLLBACK; -- due to errors\s*$/.test(tail) || !/COMMIT;\s*$/.test(tail) ? 'could not dump the whole database (the dump ends in an error)' : undefined),
    });
  });
}

function postgresSource(source: Extract<SourceConfig, { type: 'postgres' }>): StreamSource {
  const name = defaultFileName(source);
  return deferred(name, async () => {
    const password = await readSecret(source, 'postgres');
    const argv = [
      source.command ?? 'pg_dump',
      `--format=${source.format ?? 'plain'}`,
      // Compressed dumps defeat deduplication; the repository compresses anyway.
      ...(source.format === 'custom' ? ['--compress=0'] : []),
      '--no-password',
      ...(source.host ? ['--host', source.host] : []),
      ...(source.port ? ['--port', String(source.port)] : []),
      ...(source.user ? ['--username', operand(source.user, 'user')] : []),
      ...(source.options ?? []),
      `--dbname=${operand(source.database, 'database')}`,
    ];
    return commandStream(name, argv, { tool: 'pg_dump', env: password !== undefined ? { PGPASSWORD: password } : {}, missing: 'pg_dump is not installed (Debian: apt-get install postgresql-client) or not on the PATH' });
  });
}

function mysqlSource(source: Extract<SourceConfig, { type: 'mysql' }>): StreamSource {
  const name = defaultFileName(source);
  return deferred(name, async () => {
    const password = await readSecret(source, 'mysql');
    const tool = source.command ?? onPath(['mysqldump', 'mariadb-dump']);
    const argv = [
      tool,
      // One consistent snapshot of InnoDB tables without locking them.
      '--single-transaction',
      '--routines',
      '--triggers',
      ...(source.host ? ['--host', source.host] : []),
      ...(source.port ? ['--port', String(source.port)] : []),
      ...(source.socket ? ['--socket', source.socket] : []),
      ...(source.user ? ['--user', operand(source.user, 'user')] : []),
      ...(source.options ?? []),
      operand(source.database, 'database'),
    ];
    return commandStream(name, argv, {
      tool: path.basename(tool),
      env: password !== undefined ? { MYSQL_PWD: password } : {},
      missing: 'mysqldump is not installed (Debian: apt-get install mariadb-client) or not on the PATH',
    });
  });
}

export function streamSources(sources: readonly SourceConfig[]): StreamSource[] {
  const names = new Set<string>();
  return sources.map((source) => {
    const name = defaultFileName(source);
    if (names.has(name)) throw new SourceError(`two sources would both be stored as ${name}; give one of them another filename`);
    names.add(name);
    switch (source.type) {
      case 'postgres':
        return postgresSource(source);
      case 'mysql':
        return mysqlSource(source);
      case 'sqlite':
        return sqliteSource(source);
      case 'command':
        return commandStream(name, ['/bin/sh', '-c', source.command], { tool: `the command of source ${name}` });
    }
  });
}
