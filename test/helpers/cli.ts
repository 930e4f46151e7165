// Running the real `coffer` command line in a child process, as a user would.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const MAIN = path.join(REPO_ROOT, 'src/cli/main.ts');
export const PASSWORD = 'correct horse battery staple';

/**
 * The few tests that move gigabytes (a 2 GiB kill -9 resume, a 4.5 GiB sparse file, npm pack and a
 * global install) run when COFFER_HEAVY_TESTS is set, as .ci/run sets it: CI runs every test, while a
 * developer's `npm test` on a shared 2-core machine stays quick.
 */
export const HEAVY = { skip: process.env.COFFER_HEAVY_TESTS ? false : 'heavy test: set COFFER_HEAVY_TESTS=1 (CI does)' } as const;

/**
 * Each test process gets its own data directory (job database, run logs) and no configuration file,
 * so tests never touch the user's and never see each other's jobs.
 */
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-state-'));
process.on('exit', () => fs.rmSync(stateDir, { recursive: true, force: true }));
export const DATA_DIR = path.join(stateDir, 'data');
export const CONFIG_FILE = path.join(stateDir, 'config.yaml');
/** The local cache of remote repositories, also the test process's own (not the user's ~/.cache/coffer). */
export const CACHE_DIR = path.join(stateDir, 'cache');

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>;
  readonly cwd?: string;
  /**
   * Run without the capabilities that let root read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
   * so mode 000 stops it as it stops a user. Unlike switching to `nobody`, this works wherever the
   * checkout is, even inside a directory only root may enter.
   */
  readonly withoutReadOverride?: boolean;
  readonly input?: string;
  /** Kill the command after this long (a hang fails the test instead of stalling the suite). */
  readonly timeoutMs?: number;
}

function commandLine(args: string[], options: RunOptions): [string, string[]] {
  if (!options.withoutReadOverride) return [process.execPath, [MAIN, ...args]];
  return ['setpriv', ['--bounding-set', '-dac_override,-dac_read_search', process.execPath, MAIN, ...args]];
}

export function environment(options: RunOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, COFFER_PASSWORD: PASSWORD, COFFER_DATA_DIR: DATA_DIR, COFFER_CONFIG: CONFIG_FILE, COFFER_CACHE_DIR: CACHE_DIR, ...options.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export function coffer(args: string[], options: RunOptions = {}): RunResult {
  const [cmd, argv] = commandLine(args, options);
  const r = spawnSync(cmd, argv, { env: environment(options), cwd: options.cwd, input: options.input, maxBuffer: 1 << 30, timeout: options.timeoutMs, killSignal: 'SIGKILL' });
  return { code: r.status, signal: r.signal, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** stdout as bytes (dump), failing the test on a non-zero exit. */
export function okBytes(args: string[], options: RunOptions = {}): Buffer {
  const [cmd, argv] = commandLine(args, options);
  const r = spawnSync(cmd, argv, { env: environment(options), maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`coffer ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Starts coffer without waiting, for tests that interrupt it. */
export function cofferAsync(args: string[], options: RunOptions = {}) {
  const [cmd, argv] = commandLine(args, options);
  const child = spawn(cmd, argv, { env: environment(options), cwd: options.cwd });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Asserting success with the output in the failure message. */
export function ok(args: string[], options: RunOptions = {}): RunResult {
  const r = coffer(args, options);
  if (r.code !== 0) throw new Error(`coffer ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** A repository at DIR/repo holding one snapshot of DIR/source, made of `files`. */
export function repoWithSnapshot(dir: string, files: Record<string, string | Buffer> = { 'a.txt': 'alpha', 'b.txt': 'beta' }): { repo: string; source: string } {
  const source = path.join(dir, 'source');
  fs.mkdirSync(source, { recursive: true });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(source, name), content);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  return { repo, source };
}

/**
 * The command line of the process that runs `coffer init` when `program` (bin/coffer.js, or an installed
 * `coffer`) is started as a user starts it, by its shebang, with `PATH`. The command reads it from /proc
 * inside its passphrase command, a child it waits for, so no timing is involved.
 */
export function runningCommandLine(t: TestContext, program: string, PATH: string): string[] {
  return runningProcess(t, program, PATH).argv;
}

/** Like runningCommandLine, with the process's environment too; `env` is added to the one it starts with. */
export function runningProcess(t: TestContext, program: string, PATH: string, env: Record<string, string> = {}): { argv: string[]; environment: Map<string, string> } {
  const dir = tempDir(t);
  const out = path.join(dir, 'cmdline');
  const passwordCommand = `cat /proc/$PPID/cmdline > '${out}' && cat /proc/$PPID/environ > '${out}.environ' && echo pass`;
  const r = spawnSync(program, ['init', '--repo', path.join(dir, 'repo'), '--password-command', passwordCommand], { env: environment({ env: { ...env, PATH, COFFER_PASSWORD: undefined } }), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${program} init exited ${r.status}: ${r.stderr}`);
  const entries = fs.readFileSync(`${out}.environ`, 'utf8').split('\0').slice(0, -1);
  return { argv: fs.readFileSync(out, 'utf8').split('\0').slice(0, -1), environment: new Map(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) };
}

export function tempDir(t: TestContext, prefix = 'coffer-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** JSON lines of stdout (docs/JSON.md); `T` describes the lines the caller reads. */
export function jsonLines<T = Record<string, unknown>>(stdout: string): T[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export function summaryOf(stdout: string): Record<string, unknown> {
  const summary = jsonLines(stdout).find((l) => l.type === 'summary');
  if (!summary) throw new Error(`no summary line in: ${stdout}`);
  return summary;
}
