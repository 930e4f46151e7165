// `npm run bench`: runs every scenario of a corpus --runs times, the tools taking turns run by run
// (coffer, restic, borg, coffer, …), and writes RESULTS.md with the median and range of each figure.
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ALL_DATASETS, fileCountOfFilesDataset, generatedDataset, GENERATED, kernelDataset, npmDataset, REMOTE_DELAY_MS, remoteDataset, scanTree, Slot, type Dataset, type DatasetName, type ScenarioName, type TreeStats } from './corpus.ts';
import type { IndexMemoryResult } from './index-memory.ts';
import { pruneMemory, type PruneMemoryResult } from './prune-memory.ts';
import { machineInfo } from './machine.ts';
import { killRunning, measure, run, TIME_BIN, type Command } from './measure.ts';
import { renderReport, targetTable, type DatasetInfo, type Figures, type Row, type RunInfo } from './report.ts';
import { startRemoteServer, type RemoteServer } from './remote.ts';
import { measureStartup, type StartupResult } from './startup.ts';
import { TOOL_NAMES, TOOLS, type Tool } from './tools.ts';

const USAGE = `usage: npm run bench -- [options]
       npm run bench -- fuzz [--seconds N] [--seed S]   fuzz every decoder for N s each (default 60)
  --quick              small corpora (kernel fs/ subtree, ~350 MB generated), one run each: a smoke run
  --runs N             runs of every scenario, tools taking turns run by run (default 3; 1 with --quick)
  --corpus LIST        kernel, npm, generated (= photos,vm,files), photos, vm, files, remote, all (default)
                       or none (none: only the start-up measurements)
  --tools LIST         coffer,restic,borg (default all three)
  --skip-missing       run the tools that are installed instead of stopping
  --cold               drop the page cache before every timed command (needs root)
  --files-baselines    also run restic and borg on the 10^6-file tree (about 10 more minutes)
  --skip-prune-memory  leave out the prune of a generated 10^7-blob repository (bench/prune-memory.ts)
  --output FILE        default bench/RESULTS.md, or .bench-work/RESULTS-quick.md with --quick
  --fleet              instead: the fleet server under load (200 simulated agents, 5 minutes, SQLite then
                       PostgreSQL), results in bench/FLEET.md; --fleet-agents N, --fleet-seconds S
  --dashboard          instead: the dashboard's snapshot browser on a generated snapshot of 100 000 files
                       (Debian chromium), results in bench/DASHBOARD.md
  --scale-out          instead: speed-up of a scaled-out backup with 1, 2 and 3 worker processes against
                       one ordinary backup, and with 2 and 3 workers that each write to their own replica
                       (COFFER_BENCH_REPLICA_DIRS=a,b,c puts the replicas on other disks; photos and files
                       corpora; --quick for the small ones), results in bench/SCALE-OUT.md`;

const REPO_ROOT = join(import.meta.dirname, '..');
const WORK = process.env.COFFER_BENCH_WORK ?? join(REPO_ROOT, '.bench-work');
const MiB = 2 ** 20;

// `npm run bench -- fuzz …` fuzzes the decoders for longer than the test suite does.
if (process.argv[2] === 'fuzz') {
  const { runFuzz } = await import('./fuzz.ts');
  process.exit(runFuzz(process.argv.slice(3), WORK));
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function options() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        runs: { type: 'string' },
        corpus: { type: 'string', default: 'all' },
        tools: { type: 'string', default: TOOL_NAMES.join(',') },
        'skip-missing': { type: 'boolean', default: false },
        cold: { type: 'boolean', default: false },
        'files-baselines': { type: 'boolean', default: false },
        'skip-prune-memory': { type: 'boolean', default: false },
        output: { type: 'string' },
        fleet: { type: 'boolean', default: false },
        dashboard: { type: 'boolean', default: false },
        'scale-out': { type: 'boolean', default: false },
        'fleet-agents': { type: 'string', default: '200' },
        'fleet-seconds': { type: 'string', default: '300' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (e) {
    return fail(`${(e as Error).message}\n${USAGE}`);
  }
}

const opts = options();
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

if (opts.dashboard) {
  const { runDashboardBench } = await import('./dashboard-browse.ts');
  await runDashboardBench(opts.output ?? join(REPO_ROOT, 'bench', 'DASHBOARD.md'));
  process.exit(0);
}

if (opts['scale-out']) {
  const { runScaleOutBench } = await import('./scale-out.ts');
  mkdirSync(WORK, { recursive: true });
  await runScaleOutBench({ quick: opts.quick, workDir: WORK, output: opts.output ?? (opts.quick ? join(WORK, 'SCALE-OUT-quick.md') : join(REPO_ROOT, 'bench', 'SCALE-OUT.md')) });
  process.exit(0);
}

if (opts.fleet) {
  const { runFleetBench } = await import('./fleet.ts');
  await runFleetBench({
    agents: Number(opts['fleet-agents']),
    seconds: Number(opts['fleet-seconds']),
    dashboards: 5,
    backends: ['sqlite', 'postgres'],
    output: opts.output ?? join(REPO_ROOT, 'bench', 'FLEET.md'),
  });
  process.exit(0);
}

function selectedDatasets(spec: string): DatasetName[] {
  const names = new Set<DatasetName>();
  for (const part of spec.split(',')) {
    if (part === 'none') continue;
    const expanded: readonly string[] = part === 'all' ? ALL_DATASETS : part === 'generated' ? GENERATED : [part];
    for (const name of expanded) {
      if (!(ALL_DATASETS as readonly string[]).includes(name)) fail(`unknown corpus "${part}": use kernel, npm, generated, photos, vm, files, remote, all or none`);
      names.add(name as DatasetName);
    }
  }
  return [...names];
}

function selectedTools(spec: string): Tool[] {
  const tools = spec.split(',').map((n) => (TOOLS as Record<string, Tool | undefined>)[n] ?? fail(`unknown tool "${n}": use ${TOOL_NAMES.join(', ')}`));
  if (!existsSync(TIME_BIN)) fail(`${TIME_BIN} is missing: apt-get install time`);
  const missing = tools.filter((t) => t.missing() !== undefined);
  for (const t of missing) process.stderr.write(`${t.missing()}\n`);
  if (missing.some((t) => t.name !== 'coffer')) process.stderr.write('apt-get install restic borgbackup\n');
  if (missing.length > 0 && !opts['skip-missing']) process.exit(1);
  const usable = tools.filter((t) => !missing.includes(t));
  if (usable.length === 0) fail('no tool left to run');
  return usable;
}

const DROP_CACHES = '/proc/sys/vm/drop_caches';

async function dropCaches(): Promise<void> {
  await run({ file: 'sync', args: [] });
  writeFileSync(DROP_CACHES, '3');
}

/** One tool's state on the current dataset. */
interface Lane {
  readonly tool: Tool;
  readonly dir: string;
  /** Where each backup goes (three for multi3); `repo` is the first. */
  readonly repos: readonly string[];
  readonly repo: string;
  readonly env: NodeJS.ProcessEnv;
  snapshots: number;
  /** Set after a failure: the repository's state is unknown, so the tool sits out the rest of the dataset. */
  failed: boolean;
}

/** A copy of a lane's directory (repository and HOME, with the tool's cache), to run a scenario again from the same state. */
interface Checkpoint {
  readonly copy: string;
  readonly snapshots: number;
}

type RowKey = Pick<Row, 'dataset' | 'scenario' | 'sourceFiles' | 'sourceBytes'>;

const isRemoteRepo = (repo: string): boolean => repo.startsWith('s3:');

function repoBytes(repos: readonly string[]): number | undefined {
  if (repos.some(isRemoteRepo)) return undefined;
  return repos.reduce((sum, r) => sum + scanTree(r).bytes, 0);
}

/** The deepest regular file of a tree (the first in name order among the deepest): what a one-file restore asks for. */
function deepestFile(root: string): { path: string; bytes: number } {
  let best: { path: string; bytes: number; depth: number } | undefined;
  const walk = (dir: string, depth: number): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path, depth + 1);
      else if (e.isFile() && (best === undefined || depth > best.depth)) best = { path, bytes: lstatSync(path).size, depth };
    }
  };
  walk(root, 0);
  if (!best) throw new Error(`${root} holds no file to restore`);
  return best;
}

class Bench {
  readonly rows: Row[] = [];
  private readonly slot = new Slot(WORK);
  private readonly cold: boolean;
  private readonly runs: number;
  /** The S3 server of the remote-latency dataset while it runs. */
  private remote?: RemoteServer;
  private lanesMade = 0;

  constructor(cold: boolean, runs: number) {
    this.cold = cold;
    this.runs = runs;
  }

  /** Puts the slot back when the run is interrupted, so the corpus cache stays whole. */
  unmount(): void {
    this.slot.unmount();
  }

  /** Stops the remote dataset's servers (also when the run is interrupted). */
  async stopRemote(): Promise<void> {
    await this.remote?.stop();
    this.remote = undefined;
  }

  private async newLane(tool: Tool, name: string, count = 1): Promise<Lane> {
    const dir = join(WORK, name);
    rmSync(dir, { recursive: true, force: true });
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    // A private HOME isolates each tool's cache and config, so runs never share state.
    const { XDG_CACHE_HOME: _c, XDG_CONFIG_HOME: _f, ...base } = process.env;
    const env = tool.env({ ...base, HOME: home, ...this.remote?.env });
    // Remote repositories get names never used before in the bucket; local ones live in the lane's directory.
    const remote = this.remote;
    const repos = Array.from({ length: count }, (_, i) =>
      remote ? tool.remote!.location(remote.endpoint, remote.bucket, `${name}-${++this.lanesMade}`) : join(dir, count === 1 ? 'repo' : String.fromCharCode(97 + i)),
    );
    await run(tool.init(repos), env);
    return { tool, dir, repos, repo: repos[0]!, env, snapshots: 0, failed: false };
  }

  /** Mounts a source version and reads it once (untimed) unless caches are dropped before each command. */
  private mount(dir: string): TreeStats {
    this.slot.mount(dir);
    return scanTree(this.slot.path, !this.cold);
  }

  private async timed(command: Command, env: NodeJS.ProcessEnv, repos: readonly string[]): Promise<[Figures, string]> {
    const before = repoBytes(repos);
    if (this.cold) await dropCaches();
    // Requests of the untimed commands before (snapshot counts) are not this command's.
    this.remote?.takeRequestCount();
    const m = await measure(command, env);
    const requests = this.remote?.takeRequestCount();
    // Write-back of this run must not slow the next tool's.
    await run({ file: 'sync', args: [] });
    const after = repoBytes(repos);
    const figures: Figures = {
      wallSeconds: m.wallSeconds,
      cpuSeconds: m.userSeconds + m.sysSeconds,
      maxRssBytes: m.maxRssBytes,
      ...(after !== undefined && before !== undefined ? { repoBytes: after, newBytes: after - before } : {}),
      ...(requests !== undefined ? { requests } : {}),
    };
    return [figures, m.stdout];
  }

  /** The row of one tool in one scenario, created at its first run. */
  private rowOf(key: RowKey, tool: Tool): Row {
    let row = this.rows.find((r) => r.dataset === key.dataset && r.scenario === key.scenario && r.tool === tool.name);
    if (!row) this.rows.push((row = { ...key, tool: tool.name, runs: [] }));
    return row;
  }

  private async step(lane: Lane, key: RowKey, run: number, body: () => Promise<Figures>): Promise<void> {
    if (lane.failed) return;
    const row = this.rowOf(key, lane.tool);
    const label = `${key.dataset} ${key.scenario} ${lane.tool.name}${this.runs > 1 ? ` #${run + 1}` : ''}`;
    try {
      const f = await body();
      row.runs.push(f);
      const size = f.repoBytes !== undefined ? `, repo ${(f.repoBytes / MiB).toFixed(1)} MiB (+${((f.newBytes ?? 0) / MiB).toFixed(1)})` : '';
      const requests = f.requests !== undefined ? `, ${f.requests} requests` : '';
      console.log(`${label}: ${f.wallSeconds.toFixed(2)} s wall, ${f.cpuSeconds.toFixed(2)} s CPU, ${(f.maxRssBytes / MiB).toFixed(0)} MiB RSS${size}${requests}`);
    } catch (e) {
      lane.failed = true;
      row.error = e instanceof Error ? e.message : String(e);
      console.log(`${label}: FAILED\n${row.error}`);
    }
  }

  private async backup(lane: Lane, repos: readonly string[]): Promise<Figures> {
    const [figures, stdout] = await this.timed(lane.tool.backup(repos, this.slot.path), lane.env, repos);
    lane.tool.checkBackupOutput(stdout);
    for (const repo of repos) {
      const count = await lane.tool.snapshotCount(repo, lane.env);
      if (count !== lane.snapshots + 1) throw new Error(`${repo} has ${count} snapshots after backup ${lane.snapshots + 1}`);
    }
    lane.snapshots++;
    return figures;
  }

  /** Runs `command`, which restores into `target`, and checks that the target holds exactly `expected`. */
  private async restoreInto(lane: Lane, target: string, command: Command, expected: TreeStats): Promise<Figures> {
    const [figures] = await this.timed(command, lane.env, [lane.repo]);
    // Whatever layout the tool restores into, the target must hold exactly the expected files and bytes.
    const restored = scanTree(target);
    rmSync(target, { recursive: true });
    if (restored.files !== expected.files || restored.bytes !== expected.bytes)
      throw new Error(`restored ${restored.files} files / ${restored.bytes} bytes, expected ${expected.files} / ${expected.bytes}`);
    return figures;
  }

  private async restore(lane: Lane, source: TreeStats): Promise<Figures> {
    const target = join(lane.dir, 'restore');
    mkdirSync(target);
    if (!this.cold) scanTree(lane.repo, true);
    return this.restoreInto(lane, target, await lane.tool.restore(lane.repo, target, lane.env), source);
  }

  private async restoreFile(lane: Lane, file: { path: string; bytes: number }): Promise<Figures> {
    const target = join(lane.dir, 'restore');
    mkdirSync(target);
    return this.restoreInto(lane, target, lane.tool.remote!.restoreFile(lane.repo, target, file.path), { files: 1, bytes: file.bytes });
  }

  private async ls(lane: Lane, source: TreeStats): Promise<Figures> {
    const [figures, stdout] = await this.timed(lane.tool.remote!.ls(lane.repo), lane.env, [lane.repo]);
    const lines = stdout.split('\n').filter((l) => l !== '').length;
    if (lines < source.files) throw new Error(`ls printed ${lines} lines for a snapshot of ${source.files} files`);
    return figures;
  }

  /** Copies the lane's directory (untimed), to run a scenario that changes the repository again from here. */
  private async checkpoint(lane: Lane): Promise<Checkpoint> {
    if (isRemoteRepo(lane.repo)) throw new Error('a remote repository cannot be copied');
    const copy = `${lane.dir}.checkpoint`;
    rmSync(copy, { recursive: true, force: true });
    await run({ file: 'cp', args: ['-a', lane.dir, copy] });
    return { copy, snapshots: lane.snapshots };
  }

  private async rewind(lane: Lane, checkpoint: Checkpoint): Promise<void> {
    rmSync(lane.dir, { recursive: true, force: true });
    await run({ file: 'cp', args: ['-a', checkpoint.copy, lane.dir] });
    await run({ file: 'sync', args: [] });
    lane.snapshots = checkpoint.snapshots;
  }

  /**
   * A first backup into fresh repositories (`count` destinations) in every run, the tools taking turns;
   * returns the lanes of the last run. A tool whose run fails sits out the rest of the dataset.
   */
  private async initial(tools: readonly Tool[], key: RowKey, runs: number, name: (tool: Tool) => string, count = 1): Promise<Lane[]> {
    const lanes = new Map<Tool, Lane>();
    for (let i = 0; i < runs; i++)
      for (const tool of tools) {
        if (this.rowOf(key, tool).error !== undefined) continue;
        let lane: Lane;
        try {
          lane = await this.newLane(tool, name(tool), count);
        } catch (e) {
          this.rowOf(key, tool).error = e instanceof Error ? e.message : String(e);
          continue;
        }
        lanes.set(tool, lane);
        await this.step(lane, key, i, () => this.backup(lane, lane.repos));
      }
    return [...lanes.values()].filter((lane) => !lane.failed);
  }

  /** The runs of a scenario that leaves the repository as it found it (or one where that does not matter: no-change). */
  private async repeated(lanes: readonly Lane[], key: RowKey, runs: number, body: (lane: Lane) => Promise<Figures>): Promise<void> {
    for (let i = 0; i < runs; i++) for (const lane of lanes) await this.step(lane, key, i, () => body(lane));
  }

  /**
   * The runs of a scenario that changes the repository: `prepare` (untimed) once, then each run from a
   * copy of the state it left.
   */
  private async rewound(lanes: readonly Lane[], key: RowKey, runs: number, body: (lane: Lane) => Promise<Figures>, prepare?: (lane: Lane) => Promise<void>): Promise<void> {
    const checkpoints = new Map<Lane, Checkpoint>();
    try {
      for (let i = 0; i < runs; i++)
        for (const lane of lanes)
          await this.step(lane, key, i, async () => {
            if (i === 0) await prepare?.(lane);
            if (i === 0 && runs > 1) checkpoints.set(lane, await this.checkpoint(lane));
            if (i > 0) await this.rewind(lane, checkpoints.get(lane)!);
            return body(lane);
          });
    } finally {
      for (const { copy } of checkpoints.values()) rmSync(copy, { recursive: true, force: true });
    }
  }

  async dataset(d: Dataset, tools: readonly Tool[]): Promise<DatasetInfo> {
    if (d.name === 'remote') this.remote = await startRemoteServer(REMOTE_DELAY_MS);
    let lanes: Lane[] = [];
    try {
      let source = this.mount(d.versions[0]!);
      const first = source;
      for (const scenario of d.scenarios) {
        if (scenario === 'incremental') source = this.mount(d.versions[1]!);
        const key: RowKey = { dataset: d.name, scenario, sourceFiles: source.files, sourceBytes: source.bytes };
        const runs = d.once?.includes(scenario) ? 1 : this.runs;
        lanes = (await this.scenario(scenario, key, runs, tools, lanes, source)) ?? lanes;
      }
      return { name: d.name, title: d.title, files: first.files, bytes: first.bytes };
    } finally {
      this.slot.unmount();
      for (const lane of lanes) rmSync(lane.dir, { recursive: true, force: true });
      await this.stopRemote();
    }
  }

  /** Runs one scenario on every lane; `initial` makes the lanes, which it returns. */
  private async scenario(scenario: ScenarioName, key: RowKey, runs: number, tools: readonly Tool[], lanes: Lane[], source: TreeStats): Promise<Lane[] | undefined> {
    switch (scenario) {
      case 'initial':
        return this.initial(tools, key, runs, (tool) => tool.name);
      case 'multi3': {
        // Coffer only: the first version to three fresh destinations at once.
        const made = await this.initial(tools.filter((t) => t.multiDestination), key, runs, (tool) => `${tool.name}-multi3`, 3);
        for (const lane of made) rmSync(lane.dir, { recursive: true, force: true });
        return undefined;
      }
      case 'nochange':
        return void (await this.repeated(lanes, key, runs, (lane) => this.backup(lane, [lane.repo])));
      case 'incremental':
        return void (await this.rewound(lanes, key, runs, (lane) => this.backup(lane, [lane.repo])));
      case 'restore':
        return void (await this.repeated(lanes, key, runs, (lane) => this.restore(lane, source)));
      case 'prune':
        // Every snapshot but the newest is forgotten once (untimed); each run frees the space from there.
        return void (await this.rewound(
          lanes,
          key,
          runs,
          async (lane) => {
            const [figures] = await this.timed(lane.tool.prune(lane.repo), lane.env, [lane.repo]);
            const count = await lane.tool.snapshotCount(lane.repo, lane.env);
            if (count !== 1) throw new Error(`${lane.repo} has ${count} snapshots after forgetting all but the newest`);
            return figures;
          },
          async (lane) => {
            await run(lane.tool.forgetOlder(lane.repo), lane.env);
            lane.snapshots = 1;
          },
        ));
      case 'snapshots':
        return void (await this.repeated(lanes, key, runs, async (lane) => (await this.timed(lane.tool.remote!.snapshots(lane.repo), lane.env, [lane.repo]))[0]));
      case 'ls':
        return void (await this.repeated(lanes, key, runs, (lane) => this.ls(lane, source)));
      case 'restore-file': {
        const file = deepestFile(this.slot.path);
        return void (await this.repeated(lanes, key, runs, (lane) => this.restoreFile(lane, file)));
      }
    }
  }
}

async function indexMemory(quick: boolean): Promise<IndexMemoryResult> {
  const count = quick ? 1_000_000 : 10_000_000;
  const out = await run({ file: process.execPath, args: ['--expose-gc', join(import.meta.dirname, 'index-memory.ts'), '--count', String(count), '--json'] });
  const r = JSON.parse(out) as IndexMemoryResult;
  console.log(`index memory: ${r.bytesPerBlob.toFixed(1)} B/blob (RSS growth ${r.rssBytesPerBlob.toFixed(1)} B/blob) at ${count} blobs`);
  return r;
}

async function pruneMemoryBench(quick: boolean): Promise<PruneMemoryResult> {
  const blobs = quick ? 1_000_000 : 10_000_000;
  const dir = join(WORK, 'prune-memory');
  const r = await pruneMemory(blobs, dir);
  rmSync(dir, { recursive: true, force: true });
  console.log(`prune memory: ${blobs} blobs, ${r.pruneSeconds.toFixed(1)} s, peak RSS ${(r.pruneMaxRssBytes / MiB).toFixed(0)} MiB`);
  return r;
}

function runCount(): number {
  if (opts.runs === undefined) return opts.quick ? 1 : 3;
  const runs = Number(opts.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) fail(`--runs ${opts.runs}: give a whole number of runs from 1 to 100`);
  return runs;
}

function dataset(name: DatasetName, quick: boolean): Dataset {
  switch (name) {
    case 'kernel':
      return kernelDataset(quick);
    case 'npm':
      return npmDataset();
    case 'remote':
      return remoteDataset(quick);
    default:
      return generatedDataset(name, quick);
  }
}

async function main(): Promise<void> {
  const quick = opts.quick;
  const runs = runCount();
  const names = selectedDatasets(opts.corpus);
  // Built before the tools are checked: a fresh checkout has no dist/ yet.
  if (opts.tools.split(',').includes('coffer') && !process.env.COFFER_BENCH_CLI) {
    const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' });
    if (build.status !== 0) fail('npm run build failed; Coffer is benchmarked as the compiled package');
  }
  const tools = selectedTools(opts.tools);
  if (opts.cold) {
    try {
      accessSync(DROP_CACHES, constants.W_OK);
      await dropCaches();
    } catch {
      fail(`--cold needs a writable ${DROP_CACHES} (root, outside a read-only container)`);
    }
  }
  const output = opts.output ?? (quick ? join(WORK, 'RESULTS-quick.md') : join(import.meta.dirname, 'RESULTS.md'));
  const started = Date.now();
  mkdirSync(WORK, { recursive: true });
  const machine = machineInfo(WORK);
  const bench = new Bench(opts.cold, runs);
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      killRunning();
      bench.unmount();
      void bench.stopRemote().finally(() => process.exit(130));
    });

  const datasets: DatasetInfo[] = [];
  for (const name of names) {
    // restic and borg need ~10 minutes on 10^6 files, which would break the 15-minute default budget; the
    // files target is absolute (no-change ≤ 30 s), so by default only Coffer runs the full-size tree.
    const baselines = name !== 'files' || quick || opts['files-baselines'];
    // The remote-latency scenario is for the tools that speak S3 (borg does not).
    const dsTools = (baselines ? tools : tools.filter((t) => t.name === 'coffer')).filter((t) => name !== 'remote' || t.remote);
    if (dsTools.length === 0) continue;
    const d = dataset(name, quick);
    console.log(`\n== ${d.name}: ${d.title} (${dsTools.map((t) => t.name).join(', ')})`);
    datasets.push(await bench.dataset(d, dsTools));
  }
  const coffer = tools.find((t) => t.name === 'coffer');
  let startup: StartupResult | undefined;
  if (coffer) {
    console.log('\n== start-up');
    startup = await measureStartup(WORK, coffer, tools.find((t) => t.name === 'restic'));
  }
  const indexResult = coffer && names.length > 0 ? await indexMemory(quick) : undefined;
  const pruneResult = coffer && !opts['skip-prune-memory'] ? await pruneMemoryBench(quick) : undefined;

  const versions = await Promise.all(tools.map((t) => t.version(process.env)));
  const info: RunInfo = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command: ['npm run bench --', ...process.argv.slice(2)].join(' ').replace(/ --$/, ''),
    runs,
    seconds: (Date.now() - started) / 1000,
    machine,
    versions,
    settings: tools.map((t) => `${t.name}: ${t.settings}`),
    datasets,
    rows: bench.rows,
    indexMemory: indexResult,
    pruneMemory: pruneResult,
    smallFiles: fileCountOfFilesDataset(quick),
    ...(startup ? { startup } : {}),
  };
  writeFileSync(output, renderReport(info));
  console.log(`\n${targetTable(info)}\n\n${relative(process.cwd(), output)} written after ${info.seconds.toFixed(0)} s`);
}

await main();
