// One log file per run, as JSON lines, in <data dir>/logs/job-<job>-run-<run>.jsonl. A small synchronous
// writer rather than pino: every line must reach the file even when the process dies right after it
// (that is when the log matters), volumes are small, and every line goes through our redaction, which
// matches secret keys at any depth and cleans URLs inside strings, where pino's path-based redaction cannot.
import fs from 'node:fs';
import path from 'node:path';
import { redact, redactString } from './redact.ts';
import { makeDirectories } from '../store/make-directories.ts';

export const LogLevel = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
} as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

export interface LogEntry {
  readonly time: string;
  readonly level: LogLevel;
  readonly job: number;
  readonly run: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface RunLogLimits {
  /** Run logs kept, counting the new one. */
  readonly maxRuns: number;
  /** Total size of the older logs kept when a run starts. */
  readonly maxTotalBytes: number;
  /** One run's log stops growing here (with a note saying so). */
  readonly maxRunBytes: number;
}

export const DEFAULT_RUN_LOG_LIMITS: RunLogLimits = {
  maxRuns: 100,
  maxTotalBytes: 256 * 1024 * 1024,
  maxRunBytes: 32 * 1024 * 1024,
};

const FILE_NAME = /^job-(\d+)-run-(\d+)\.jsonl$/;

export function runLogDir(dataDir: string): string {
  return path.join(dataDir, 'logs');
}

export function runLogFile(dir: string, jobId: number, run: number): string {
  return path.join(dir, `job-${jobId}-run-${run}.jsonl`);
}

interface RunLogFile {
  readonly file: string;
  readonly jobId: number;
  readonly run: number;
  readonly size: number;
}

/** The run logs in `dir`, oldest first (job ids and run numbers only grow). */
function listRunLogs(dir: string): RunLogFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .flatMap((name) => {
      const match = FILE_NAME.exec(name);
      if (match === null) return [];
      const file = path.join(dir, name);
      return [{ file, jobId: Number(match[1]), run: Number(match[2]), size: fs.statSync(file).size }];
    })
    .sort((a, b) => a.jobId - b.jobId || a.run - b.run);
}

/**
 * Deletes the oldest run logs until at most `maxRuns - 1` remain (room for the run about to start) and
 * they add up to at most `maxTotalBytes`. Returns the files deleted.
 */
export function rotateRunLogs(dir: string, limits: RunLogLimits = DEFAULT_RUN_LOG_LIMITS): string[] {
  const logs = listRunLogs(dir);
  let total = logs.reduce((sum, log) => sum + log.size, 0);
  let excess = logs.length - (limits.maxRuns - 1);
  const removed: string[] = [];
  for (const log of logs) {
    if (excess <= 0 && total <= limits.maxTotalBytes) break;
    fs.rmSync(log.file, { force: true });
    removed.push(log.file);
    total -= log.size;
    excess--;
  }
  return removed;
}

export class RunLog {
  readonly file: string;
  private readonly jobId: number;
  private readonly run: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private fd: number;
  private bytes: number;
  private truncated = false;

  private constructor(file: string, jobId: number, run: number, maxBytes: number, now: () => number) {
    this.file = file;
    this.jobId = jobId;
    this.run = run;
    this.maxBytes = maxBytes;
    this.now = now;
    this.fd = fs.openSync(file, 'a', 0o600);
    this.bytes = fs.fstatSync(this.fd).size;
  }

  /** Starts the log of a run (see JobRun.run), rotating older logs out first. */
  static open(dir: string, jobId: number, run: number, options: { limits?: RunLogLimits; now?: () => number } = {}): RunLog {
    const limits = options.limits ?? DEFAULT_RUN_LOG_LIMITS;
    makeDirectories(dir, 0o700);
    rotateRunLogs(dir, limits);
    return new RunLog(runLogFile(dir, jobId, run), jobId, run, limits.maxRunBytes, options.now ?? Date.now);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write(LogLevel.debug, msg, fields);
  }

  info(msg: string, fields?: Record<string, unknown>): void {
    this.write(LogLevel.info, msg, fields);
  }

  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write(LogLevel.warn, msg, fields);
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.write(LogLevel.error, msg, fields);
  }

  write(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (this.truncated || this.fd < 0) return;
    let line = this.line(level, msg, fields);
    if (this.bytes + Buffer.byteLength(line) > this.maxBytes) {
      this.truncated = true;
      line = this.line(LogLevel.warn, `log truncated: it reached its limit of ${this.maxBytes} bytes`, {});
    }
    // One write per line with O_APPEND: a crash loses at most the line being written.
    this.bytes += fs.writeSync(this.fd, line);
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  private line(level: LogLevel, msg: string, fields: Record<string, unknown>): string {
    const entry: Record<string, unknown> = { time: new Date(this.now()).toISOString(), level, job: this.jobId, run: this.run, msg: redactString(msg) };
    // The fixed fields win over caller fields of the same name.
    for (const [key, value] of Object.entries(redact(fields) as Record<string, unknown>)) {
      if (!(key in entry)) entry[key] = value;
    }
    return `${JSON.stringify(entry)}\n`;
  }
}

/** Every line of every run of a job, in order (what `coffer logs JOB` prints). Empty when rotated away. */
export function readJobLog(dir: string, jobId: number): LogEntry[] {
  return listRunLogs(dir)
    .filter((log) => log.jobId === jobId)
    .flatMap((log) =>
      fs
        .readFileSync(log.file, 'utf8')
        .split('\n')
        .flatMap((text) => {
          try {
            return text === '' ? [] : [JSON.parse(text) as LogEntry];
          } catch {
            // A crash mid-write can leave a torn last line; the lines before it are intact.
            return [];
          }
        }),
    );
}
