// Runs commands for the benchmark. Timed runs go through GNU `/usr/bin/time -v`, which reports the child's
// CPU time and peak RSS from the kernel's rusage (wait4), so every tool is measured the same way whatever it
// is written in; wall time comes from our own monotonic clock because time(1) rounds it to 10 ms.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TIME_BIN = '/usr/bin/time';

export interface Command {
  readonly file: string;
  readonly args: readonly string[];
  /** Working directory; borg extract restores into it. */
  readonly cwd?: string;
}

export interface Measurement {
  readonly wallSeconds: number;
  readonly userSeconds: number;
  readonly sysSeconds: number;
  readonly maxRssBytes: number;
  readonly stdout: string;
}

export class CommandError extends Error {
  constructor(command: Command, code: number | null, output: string) {
    const shown = [command.file, ...command.args].join(' ');
    super(`\`${shown}\` exited with ${code ?? 'a signal'}\n${tail(output, 2000)}`);
  }
}

function tail(text: string, chars: number): string {
  return text.length <= chars ? text.trimEnd() : `…${text.slice(-chars).trimEnd()}`;
}

interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Process groups of the commands still running, so an interrupted run can stop them. */
const running = new Set<number>();

/** Kills every command still running (with its children), e.g. when the harness is interrupted. */
export function killRunning(): void {
  for (const pgid of running) killGroup(pgid);
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

// Generous: borg takes ~4 minutes for 10^6 small files here; a hung command must not stall the run forever.
const TIMEOUT_MS = 30 * 60 * 1000;

function spawnCollect(file: string, args: readonly string[], cwd: string | undefined, env: NodeJS.ProcessEnv): Promise<Finished> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout kills the tool under /usr/bin/time and not only time itself.
    const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const pgid = child.pid;
    if (pgid !== undefined) running.add(pgid);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pgid !== undefined) killGroup(pgid);
    }, TIMEOUT_MS);
    // Output is kept for error messages and JSON summaries; restic/borg are run quietly, so it stays small.
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (pgid !== undefined) running.delete(pgid);
      const stderr = Buffer.concat(err).toString('utf8') + (timedOut ? `\nkilled after ${TIMEOUT_MS / 60000} minutes` : '');
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}

/** Runs an untimed command (init, listing, helpers) and returns its stdout; throws on a non-zero exit. */
export async function run(command: Command, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const r = await spawnCollect(command.file, command.args, command.cwd, env);
  if (r.code !== 0) throw new CommandError(command, r.code, r.stderr + r.stdout);
  return r.stdout;
}

function field(report: string, label: string): number {
  const line = report.split('\n').find((l) => l.trimStart().startsWith(label));
  const value = line === undefined ? NaN : Number(line.slice(line.lastIndexOf(':') + 1));
  if (!Number.isFinite(value)) throw new Error(`${TIME_BIN} -v output has no "${label}":\n${report}`);
  return value;
}

/** Runs `command` under `/usr/bin/time -v`; throws CommandError on a non-zero exit. */
export async function measure(command: Command, env: NodeJS.ProcessEnv): Promise<Measurement> {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-bench-time-'));
  const reportFile = join(dir, 'time.txt');
  try {
    const started = process.hrtime.bigint();
    const r = await spawnCollect(TIME_BIN, ['-v', '-o', reportFile, command.file, ...command.args], command.cwd, env);
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (r.code !== 0) throw new CommandError(command, r.code, r.stderr + r.stdout);
    const report = readFileSync(reportFile, 'utf8');
    return {
      wallSeconds,
      userSeconds: field(report, 'User time (seconds)'),
      sysSeconds: field(report, 'System time (seconds)'),
      maxRssBytes: field(report, 'Maximum resident set size (kbytes)') * 1024,
      stdout: r.stdout,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
