// Benchmark corpora: building and caching them, and presenting each version at one fixed path.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { editVmImage, generatePhotos, generateSmallFiles, generateVmImage, type PhotoParams } from './generate.ts';

export const CACHE_ROOT = process.env.COFFER_BENCH_CACHE ?? join(homedir(), '.cache', 'coffer-bench');
const KERNEL_SCRIPT = join(import.meta.dirname, '..', '..', 'shared', 'bench', 'kernel-corpus.sh');
const SEED = 'coffer-bench-1';

export type ScenarioName = 'initial' | 'nochange' | 'multi3' | 'incremental' | 'restore' | 'prune' | 'snapshots' | 'ls' | 'restore-file';
export type DatasetName = 'kernel' | 'npm' | 'photos' | 'vm' | 'files' | 'remote';
export const GENERATED: readonly DatasetName[] = ['photos', 'vm', 'files'];
/** Every corpus `--corpus all` runs, in order. */
export const ALL_DATASETS: readonly DatasetName[] = ['kernel', 'npm', ...GENERATED, 'remote'];

export interface Dataset {
  readonly name: DatasetName;
  readonly title: string;
  /** Source directories in backup order; `incremental` switches from the first to the second. */
  readonly versions: readonly string[];
  readonly scenarios: readonly ScenarioName[];
  /** Scenarios that run once whatever --runs says (setup whose figures are shown but not compared). */
  readonly once?: readonly ScenarioName[];
}

interface GeneratedParams {
  readonly photos: PhotoParams;
  readonly vmMiB: number;
  readonly vmEdits: number;
  readonly files: number;
}

// Full: ~3 GB of photos, a 1 GiB image, 10^6 files. Quick: enough to exercise every code path in seconds.
const PROFILES: Record<'full' | 'quick', GeneratedParams> = {
  full: { photos: { count: 160, minMiB: 8, maxMiB: 30 }, vmMiB: 1024, vmEdits: 200, files: 1_000_000 },
  quick: { photos: { count: 12, minMiB: 8, maxMiB: 30 }, vmMiB: 128, vmEdits: 40, files: 20_000 },
};

export function fileCountOfFilesDataset(quick: boolean): number {
  return PROFILES[quick ? 'quick' : 'full'].files;
}

/** Two successive Debian linux-source-6.1 trees from the shared script; `quick` uses their fs/ subtrees. */
export function kernelDataset(quick: boolean): Dataset {
  if (!existsSync(KERNEL_SCRIPT)) throw new Error(`kernel corpus script not found at ${KERNEL_SCRIPT}`);
  let out: string;
  try {
    // The script is idempotent and returns at once when both trees are cached.
    out = execFileSync('bash', [KERNEL_SCRIPT, join(CACHE_ROOT, 'corpus')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch {
    throw new Error(`${KERNEL_SCRIPT} failed; if apt-get could not find a linux-source-6.1 version, run \`apt-get update\``);
  }
  const trees = out.trim().split('\n').at(-1)!.split(' ');
  if (trees.length !== 2) throw new Error(`unexpected output from ${KERNEL_SCRIPT}: ${out}`);
  const versions = quick ? trees.map((t) => join(t, 'fs')) : trees;
  return {
    name: 'kernel',
    // The script names the trees after their Debian package versions: v176 is linux-source-6.1 6.1.176-1.
    title: `Linux source ${trees.map((t) => `6.1.${basename(t).slice(1)}`).join(' → ')}${quick ? ' (fs/ only)' : ''}`,
    versions,
    scenarios: ['initial', 'nochange', 'multi3', 'incremental', 'restore', 'prune'],
  };
}

/**
 * A generated dataset, built on first use into CACHE_ROOT/generated/<name>-<hash of its parameters>;
 * `complete` is written last, so an interrupted generation is redone.
 */
function cached(name: DatasetName, params: unknown, build: (dir: string) => void): string {
  const hash = createHash('sha256').update(JSON.stringify({ SEED, params })).digest('hex').slice(0, 12);
  const dir = join(CACHE_ROOT, 'generated', `${name}-${hash}`);
  if (!existsSync(join(dir, 'complete'))) {
    process.stderr.write(`generating ${name} corpus in ${dir}…\n`);
    const started = Date.now();
    rmSync(dir, { recursive: true, force: true });
    build(dir);
    writeFileSync(join(dir, 'complete'), '');
    process.stderr.write(`generated ${name} corpus in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  }
  return dir;
}

export function generatedDataset(name: DatasetName, quick: boolean): Dataset {
  const p = PROFILES[quick ? 'quick' : 'full'];
  switch (name) {
    case 'photos': {
      const dir = cached(name, p.photos, (d) => generatePhotos(join(d, 'v1'), SEED, p.photos));
      return {
        name,
        title: `Photo library: ${p.photos.count} incompressible files of ${p.photos.minMiB}–${p.photos.maxMiB} MiB`,
        versions: [join(dir, 'v1')],
        scenarios: ['initial', 'nochange', 'restore'],
      };
    }
    case 'vm': {
      const dir = cached(name, [p.vmMiB, p.vmEdits], (d) => {
        generateVmImage(join(d, 'v1', 'disk.img'), SEED, p.vmMiB);
        editVmImage(join(d, 'v1', 'disk.img'), join(d, 'v2', 'disk.img'), SEED, p.vmMiB, p.vmEdits);
      });
      return {
        name,
        title: `VM image: ${p.vmMiB} MiB raw disk, then ${p.vmEdits} in-place writes of 4–256 KiB`,
        versions: [join(dir, 'v1'), join(dir, 'v2')],
        scenarios: ['initial', 'incremental', 'restore'],
      };
    }
    case 'files': {
      const dir = cached(name, p.files, (d) => generateSmallFiles(join(d, 'v1'), SEED, p.files));
      return {
        name,
        title: `${p.files.toLocaleString('en-US')} small files of 0–4 KiB`,
        versions: [join(dir, 'v1')],
        scenarios: ['initial', 'nochange'],
      };
    }
    default:
      throw new Error(`the ${name} corpus is not generated`);
  }
}

const NPM_LOCKS = join(import.meta.dirname, 'npm-corpus');
/** npm's pnpm-like layout: each package once in node_modules/.store, linked into place by symlinks. */
const NPM_STRATEGY = 'linked';

/**
 * Two installed node_modules trees (real files: JavaScript, TypeScript declarations, maps, a few
 * binaries; hundreds of symlinks), installed by `npm ci` from the lockfiles in bench/npm-corpus/v1 and
 * v2 (this project's own dependencies at two points of its history), without install scripts. The
 * registry's tarballs are immutable, so the same npm version builds the same trees on every machine
 * of the same platform; the cache key includes the npm version.
 */
export function npmDataset(): Dataset {
  const npm = execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim();
  const locks = ['v1', 'v2'].map((v) => ['package.json', 'package-lock.json'].map((f) => readFileSync(join(NPM_LOCKS, v, f), 'utf8')));
  const dir = cached('npm', { npm, strategy: NPM_STRATEGY, locks: createHash('sha256').update(JSON.stringify(locks)).digest('hex') }, (d) => {
    // npm run bench sets npm_config_* for its children; the install must not inherit them.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    for (const v of ['v1', 'v2']) {
      mkdirSync(join(d, v), { recursive: true });
      for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(NPM_LOCKS, v, f), join(d, v, f));
      execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--include=dev', `--install-strategy=${NPM_STRATEGY}`], { cwd: join(d, v), env, stdio: ['ignore', 'ignore', 'inherit'] });
    }
  });
  return {
    name: 'npm',
    title: `node_modules installed by npm ${npm} (${NPM_STRATEGY} layout): this project's dependencies at two points of its history`,
    versions: [join(dir, 'v1'), join(dir, 'v2')],
    scenarios: ['initial', 'nochange', 'incremental', 'restore'],
  };
}

/** Delay the remote-latency scenario's proxy adds to every request. */
export const REMOTE_DELAY_MS = 20;

/**
 * The remote-latency scenario's source: the npm corpus's first tree (quick: 2,000 generated small
 * files), backed up once to s3rver; then read-mostly commands, each request 20 ms late (bench/remote.ts).
 */
export function remoteDataset(quick: boolean): Dataset {
  const versions = quick ? [join(cached('files', 2000, (d) => generateSmallFiles(join(d, 'v1'), SEED, 2000)), 'v1')] : [npmDataset().versions[0]!];
  return {
    name: 'remote',
    title: `${quick ? '2,000 small files' : 'the npm corpus (first tree)'} on S3 (s3rver) behind a proxy adding ${REMOTE_DELAY_MS} ms to every request`,
    versions,
    scenarios: ['initial', 'snapshots', 'ls', 'nochange', 'restore-file'],
    once: ['initial'],
  };
}

export interface TreeStats {
  readonly files: number;
  readonly bytes: number;
}

/** Counts regular files and their bytes; with `read`, also reads every file (the warm-up before a timed run). */
export function scanTree(root: string, read = false): TreeStats {
  const buf = Buffer.allocUnsafe(1 << 20);
  let files = 0;
  let bytes = 0;
  const dirs = [root];
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) dirs.push(path);
      else if (e.isFile()) {
        files++;
        bytes += lstatSync(path).size;
        if (read) readWhole(path, buf);
      }
    }
  }
  return { files, bytes };
}

function readWhole(path: string, buf: Buffer): void {
  const fd = openSync(path, 'r');
  try {
    while (readSync(fd, buf) > 0);
  } finally {
    closeSync(fd);
  }
}

/**
 * Presents corpus versions at one fixed path, so restic and borg find their parent snapshot by path and
 * all tools record the same paths. A rename keeps inodes, mtimes and ctimes, so an unchanged file looks
 * unchanged to every tool. The origin is noted in a file, so the next start undoes a killed run's mount.
 */
export class Slot {
  readonly path: string;
  private readonly note: string;

  constructor(workDir: string) {
    mkdirSync(workDir, { recursive: true });
    this.path = join(workDir, 'src');
    this.note = join(workDir, 'src.origin');
    this.unmount();
  }

  mount(dir: string): void {
    this.unmount();
    writeFileSync(this.note, dir);
    try {
      renameSync(dir, this.path);
    } catch (e) {
      rmSync(this.note);
      if ((e as NodeJS.ErrnoException).code === 'EXDEV')
        throw new Error(`${dir} and ${this.path} must be on one file system: set COFFER_BENCH_CACHE or COFFER_BENCH_WORK`);
      throw e;
    }
  }

  unmount(): void {
    if (!existsSync(this.note)) return;
    if (existsSync(this.path)) renameSync(this.path, readFileSync(this.note, 'utf8'));
    rmSync(this.note);
  }
}
