// Start-up time: `coffer snapshots` on a small local repository beside `restic snapshots`, and
// `coffer --version` beside a bare `node -e 0` (the floor of any Node program). Commands this short are
// at the mercy of a busy machine, so each pair runs interleaved (A B A B …) after a warm-up, and the
// report keeps the medians with their ranges.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { generateSmallFiles } from './generate.ts';
import { measure, run, type Command } from './measure.ts';
import type { Tool } from './tools.ts';

export const STARTUP_RUNS = 11;

export interface StartupPair {
  readonly what: string;
  readonly command: string;
  readonly baseline: string;
  /** Wall seconds of each counted run. */
  readonly seconds: readonly number[];
  readonly baselineSeconds: readonly number[];
}

export interface StartupResult {
  readonly snapshots?: StartupPair;
  readonly version?: StartupPair;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function shown(command: Command): string {
  return [command.file === process.execPath ? 'node' : command.file, ...command.args].join(' ');
}

async function interleaved(what: string, a: Command, aEnv: NodeJS.ProcessEnv, b: Command, bEnv: NodeJS.ProcessEnv): Promise<StartupPair> {
  const seconds: number[] = [];
  const baselineSeconds: number[] = [];
  for (let i = 0; i <= STARTUP_RUNS; i++) {
    const ma = await measure(a, aEnv);
    const mb = await measure(b, bEnv);
    // The first pair warms the page cache and Node's compile cache; it is not counted.
    if (i === 0) continue;
    seconds.push(ma.wallSeconds);
    baselineSeconds.push(mb.wallSeconds);
  }
  const pair = { what, command: shown(a), baseline: shown(b), seconds, baselineSeconds };
  console.log(`${what}: ${median(seconds).toFixed(3)} s, baseline ${median(baselineSeconds).toFixed(3)} s (medians of ${STARTUP_RUNS})`);
  return pair;
}

/** A repository of two snapshots of 50 small files, made by `tool` in `dir`. */
async function smallRepository(tool: Tool, dir: string, source: string): Promise<{ repo: string; env: NodeJS.ProcessEnv }> {
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true });
  const { XDG_CACHE_HOME: _c, XDG_CONFIG_HOME: _f, ...base } = process.env;
  const env = tool.env({ ...base, HOME: home, COFFER_DATA_DIR: join(dir, 'data') });
  const repo = join(dir, 'repo');
  await run(tool.init([repo]), env);
  for (let i = 0; i < 2; i++) await run(tool.backup([repo], source), env);
  return { repo, env };
}

export async function measureStartup(work: string, coffer: Tool, restic: Tool | undefined): Promise<StartupResult> {
  const dir = join(work, 'startup');
  rmSync(dir, { recursive: true, force: true });
  const source = join(dir, 'src');
  generateSmallFiles(source, 'coffer-bench-startup', 50);
  try {
    const c = await smallRepository(coffer, join(dir, 'coffer'), source);
    // The installed `coffer` (bin/coffer.js) turns on Node's compile cache before loading dist/; the
    // harness runs dist/ directly, so it turns the cache on the same way (the warm-up pair fills it).
    const cofferEnv = { ...c.env, NODE_COMPILE_CACHE: join(dir, 'compile-cache') };
    const version = await interleaved('coffer --version vs node -e 0', coffer.command(['--version']), cofferEnv, { file: process.execPath, args: ['-e', '0'] }, c.env);
    if (!restic) return { version };
    const r = await smallRepository(restic, join(dir, 'restic'), source);
    const snapshots = await interleaved('coffer snapshots vs restic snapshots', coffer.command(['snapshots', '--repo', c.repo]), cofferEnv, restic.command(['snapshots', '--repo', r.repo]), r.env);
    return { snapshots, version };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
