// One adapter per tool: the commands the harness runs, with each tool's defaults except for the
// compression and encryption choices below (recorded in RESULTS.md).
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { NODE_ENVIRONMENT, NODE_FLAGS } from '../src/node-flags.ts';
import { run, type Command } from './measure.ts';

export type ToolName = 'coffer' | 'restic' | 'borg';
export const TOOL_NAMES: readonly ToolName[] = ['coffer', 'restic', 'borg'];

const PASSPHRASE = 'coffer-bench';
const REPO_ROOT = join(import.meta.dirname, '..');
/**
 * The compiled package (dist/, built by run.ts first), as `npm install` gives it to users: running the
 * TypeScript sources would also time Node's type stripping in every thread. Overridable to benchmark
 * another checkout or build against the same corpora.
 */
export const COFFER_CLI = process.env.COFFER_BENCH_CLI ?? join(REPO_ROOT, 'dist', 'cli', 'main.js');

export interface Tool {
  readonly name: ToolName;
  /** How the repository is set up, for the report. */
  readonly settings: string;
  /** Whether one backup can write several destinations (`backup` and `init` then take several repos). */
  readonly multiDestination: boolean;
  /** Why the tool cannot run here, or undefined. */
  missing(): string | undefined;
  version(env: NodeJS.ProcessEnv): Promise<string>;
  /** The tool run with `args` (start-up measurements). */
  command(args: readonly string[]): Command;
  /** Passphrase variables added to an environment whose HOME is the tool's private one (caches, config). */
  env(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  init(repos: readonly string[]): Command;
  backup(repos: readonly string[], source: string): Command;
  /** Checks a successful backup's stdout; throws when it breaks the tool's contract. */
  checkBackupOutput(stdout: string): void;
  /** The restore command for the newest snapshot; may look up its name first (untimed). */
  restore(repo: string, target: string, env: NodeJS.ProcessEnv): Promise<Command>;
  snapshotCount(repo: string, env: NodeJS.ProcessEnv): Promise<number>;
  /** Forgets every snapshot but the newest (untimed). */
  forgetOlder(repo: string): Command;
  /** Frees the space of forgotten snapshots (timed). */
  prune(repo: string): Command;
  /** What the remote-latency scenario runs; only tools that speak S3 have it. */
  readonly remote?: RemoteCommands;
}

/** Commands of the remote-latency scenario (bench/remote.ts): read-mostly work on an S3 repository. */
export interface RemoteCommands {
  /** The repository `name` in `bucket` of the S3 server at `endpoint` (http://127.0.0.1:port, path-style). */
  location(endpoint: string, bucket: string, name: string): string;
  snapshots(repo: string): Command;
  /** Every entry of the newest snapshot, one per line. */
  ls(repo: string): Command;
  /** Restores only the file at `path` (absolute, as backed up) of the newest snapshot into `target`. */
  restoreFile(repo: string, target: string, path: string): Command;
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function single(repos: readonly string[], tool: string): string {
  if (repos.length !== 1) throw new Error(`${tool} writes one repository per backup`);
  return repos[0]!;
}

const restic: Tool = {
  name: 'restic',
  settings: 'repository format 2 (the 0.14 default), `--compression auto` (zstd, the default), `--host bench`',
  multiDestination: false,
  missing: () => (onPath('restic') ? undefined : 'restic is not installed'),
  version: async (env) => (await run({ file: 'restic', args: ['version'] }, env)).trim(),
  command: (args) => ({ file: 'restic', args }),
  env: (base) => ({ ...base, RESTIC_PASSWORD: PASSPHRASE }),
  init: (repos) => ({ file: 'restic', args: ['init', '--quiet', '--repo', single(repos, 'restic')] }),
  // --host pins the parent-snapshot lookup (host + paths) whatever the machine is called.
  backup: (repos, source) => ({ file: 'restic', args: ['backup', '--quiet', '--host', 'bench', '--repo', single(repos, 'restic'), source] }),
  checkBackupOutput: () => {},
  restore: async (repo, target) => ({
    file: 'restic',
    args: ['restore', '--quiet', 'latest', '--host', 'bench', '--repo', repo, '--target', target],
  }),
  snapshotCount: async (repo, env) =>
    (JSON.parse(await run({ file: 'restic', args: ['snapshots', '--json', '--repo', repo] }, env)) as unknown[]).length,
  forgetOlder: (repo) => ({ file: 'restic', args: ['forget', '--quiet', '--repo', repo, '--keep-last', '1'] }),
  prune: (repo) => ({ file: 'restic', args: ['prune', '--quiet', '--repo', repo] }),
  remote: {
    // minio-go addresses an IP endpoint path-style by itself, as s3rver needs.
    location: (endpoint, bucket, name) => `s3:${endpoint}/${bucket}/${name}`,
    snapshots: (repo) => ({ file: 'restic', args: ['snapshots', '--repo', repo] }),
    ls: (repo) => ({ file: 'restic', args: ['ls', '--repo', repo, '--host', 'bench', 'latest'] }),
    restoreFile: (repo, target, path) => ({ file: 'restic', args: ['restore', '--quiet', 'latest', '--host', 'bench', '--repo', repo, '--target', target, '--include', path] }),
  },
};

async function lastArchive(repo: string, env: NodeJS.ProcessEnv): Promise<string> {
  const list = JSON.parse(await run({ file: 'borg', args: ['list', '--json', '--last', '1', repo] }, env)) as {
    archives: { name: string }[];
  };
  const name = list.archives[0]?.name;
  if (name === undefined) throw new Error(`borg repository ${repo} has no archive`);
  return name;
}

const borg: Tool = {
  name: 'borg',
  settings:
    '`--encryption repokey` (AES-256-CTR + HMAC-SHA256: faster than repokey-blake2 on CPUs with SHA-NI, as borg\'s docs advise), `--compression zstd,3`, default chunker (buzhash, ~2 MiB chunks)',
  multiDestination: false,
  missing: () => (onPath('borg') ? undefined : 'borg is not installed'),
  version: async (env) => (await run({ file: 'borg', args: ['--version'] }, env)).trim(),
  command: (args) => ({ file: 'borg', args }),
  // The passphrase display prompt would otherwise wait for an answer on init.
  env: (base) => ({ ...base, BORG_PASSPHRASE: PASSPHRASE, BORG_DISPLAY_PASSPHRASE: 'no' }),
  init: (repos) => ({ file: 'borg', args: ['init', '--encryption', 'repokey', single(repos, 'borg')] }),
  // Archive names only need to be unique within the repository; restore asks for the newest.
  backup: (repos, source) => ({
    file: 'borg',
    args: ['create', '--compression', 'zstd,3', `${single(repos, 'borg')}::bench-${Date.now()}`, source],
  }),
  checkBackupOutput: () => {},
  // borg extract writes into the working directory.
  restore: async (repo, target, env) => ({
    file: 'borg',
    args: ['extract', `${repo}::${await lastArchive(repo, env)}`],
    cwd: target,
  }),
  snapshotCount: async (repo, env) =>
    (JSON.parse(await run({ file: 'borg', args: ['list', '--json', repo] }, env)) as { archives: unknown[] }).archives.length,
  forgetOlder: (repo) => ({ file: 'borg', args: ['prune', '--keep-last', '1', repo] }),
  // borg 1.2 frees the space of pruned archives in `compact`.
  prune: (repo) => ({ file: 'borg', args: ['compact', repo] }),
};

/** The compiled CLI as its launcher starts it: with Coffer's Node flags. */
export function cofferCommand(args: readonly string[]): Command {
  return { file: process.execPath, args: [...NODE_FLAGS, COFFER_CLI, ...args] };
}

const repoArgs = (repos: readonly string[]): string[] => repos.flatMap((r) => ['--repo', r]);

/** The last line of a command's output, parsed as JSON; undefined when it is not JSON. */
function lastJsonLine(stdout: string): unknown {
  try {
    return JSON.parse(stdout.trimEnd().split('\n').at(-1) ?? '') as unknown;
  } catch {
    return undefined;
  }
}

/** The Coffer CLI as specified in PRODUCT.md, run by this Node (TypeScript directly) from the source tree. */
const coffer: Tool = {
  name: 'coffer',
  settings: 'defaults (zstd level 3 where it saves space, AES-256-GCM, 1 MiB average chunks)',
  multiDestination: true,
  missing: () => (existsSync(COFFER_CLI) ? undefined : `${COFFER_CLI} does not exist yet`),
  version: async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const commit = (await run({ file: 'git', args: ['-C', REPO_ROOT, 'describe', '--always', '--dirty'] })).trim();
    return `coffer ${pkg.version} (commit ${commit}, Node ${process.version})`;
  },
  command: cofferCommand,
  env: (base) => ({ ...NODE_ENVIRONMENT, ...base, COFFER_PASSWORD: PASSPHRASE }),
  init: (repos) => cofferCommand(['init', ...repoArgs(repos)]),
  backup: (repos, source) => cofferCommand(['backup', ...repoArgs(repos), '--json', source]),
  checkBackupOutput: (stdout) => {
    const last = lastJsonLine(stdout) as { type?: unknown } | undefined;
    if (last?.type !== 'summary') throw new Error('`coffer backup --json` did not end with a {"type":"summary"} line');
  },
  restore: async (repo, target) => cofferCommand(['restore', '--repo', repo, 'latest', '--target', target]),
  // JSON lines, one {"type":"snapshot"} line per snapshot.
  snapshotCount: async (repo, env) =>
    (await run(cofferCommand(['snapshots', '--repo', repo, '--json']), env)).split('\n').filter((l) => l.startsWith('{"type":"snapshot"')).length,
  forgetOlder: (repo) => cofferCommand(['forget', '--repo', repo, '--keep-last', '1']),
  prune: (repo) => cofferCommand(['prune', '--repo', repo]),
  remote: {
    location: (endpoint, bucket, name) => `s3:${endpoint}/${bucket}/${name}`,
    snapshots: (repo) => cofferCommand(['snapshots', '--repo', repo]),
    ls: (repo) => cofferCommand(['ls', '--repo', repo, 'latest']),
    restoreFile: (repo, target, path) => cofferCommand(['restore', '--repo', repo, `latest:${path}`, '--target', target]),
  },
};

export const TOOLS: Readonly<Record<ToolName, Tool>> = { coffer, restic, borg };
