// `npm run bench`: runs every scenario for each tool in turn on the same corpus and writes RESULTS.md.
import { accessSync, constants, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileCountOfFilesDataset, generatedDataset, GENERATED, kernelDataset, scanTree, Slot, type Dataset, type DatasetName, type TreeStats } from './corpus.ts';
import type { IndexMemoryResult } from './index-memory.ts';
import { pruneMemory, type PruneMemoryResult } from './prune-memory.ts';
import { machineInfo } from './machine.ts';
import { killRunning, measure, run, TIME_BIN, type Command } from './measure.ts';
import { renderReport, targetTable, type DatasetInfo, type Figures, type Row, type RunInfo } from './report.ts';
import { measureStartup, type StartupResult } from './startup.ts';
import { TOOL_NAMES, TOOLS, type Tool } from './tools.ts';

const USAGE = `usage: npm run bench -- [options]
       npm run bench -- fuzz [--seconds N] [--seed S]   fuzz every decoder for N s each (default 60)
  --quick              small corpora (kernel fs/ subtree, ~350 MB generated): a ~1 minute smoke run
  --corpus LIST        kernel, generated (= photos,vm,files), photos, vm, files, all (default) or none
                       (none: only the start-up measurements)
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
                       one ordinary backup (photos and files corpora; --quick for the small ones), results
                       in bench/SCALE-OUT.md`;

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
    const expanded: readonly string[] = part === 'all' ? ['kernel', ...GENERATED] : part === 'generated' ? GENERATED : [part];
    for (const name of expanded) {
      if (name !== 'kernel' && !(GENERATED as readonly string[]).includes(name))
        fail(`unknown corpus "${part}": use kernel, generated, photos, vm, files, all or none`);
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
  readonly repo: string;
  readonly env: NodeJS.ProcessEnv;
  snapshots: number;
  /** Set after a failure: the repository's state is unknown, so the tool sits out the rest of the dataset. */
  failed: boolean;
}

function repoBytes(repos: readonly string[]): number {
  return repos.reduce((sum, r) => sum + scanTree(r).bytes, 0);
}

class Bench {
  readonly rows: Row[] = [];
  private readonly slot = new Slot(WORK);
  private readonly cold: boolean;

  constructor(cold: boolean) {
    this.cold = cold;
  }

  /** Puts the slot back when the run is interrupted, so the corpus cache stays whole. */
  unmount(): void {
    this.slot.unmount();
  }

  private async newLane(tool: Tool, name: string, repos: readonly string[]): Promise<Lane> {
    const dir = join(WORK, name);
    rmSync(dir, { recursive: true, force: true });
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    // A private HOME isolates each tool's cache and config, so runs never share state.
    const { XDG_CACHE_HOME: _c, XDG_CONFIG_HOME: _f, ...base } = process.env;
    const env = tool.env({ ...base, HOME: home });
    await run(tool.init(repos), env);
    return { tool, dir, repo: repos[0]!, env, snapshots: 0, failed: false };
  }

  /** Mounts a source version and reads it once (untimed) unless caches are dropped before each command. */
  private mount(dir: string): TreeStats {
    this.slot.mount(dir);
    return scanTree(this.slot.path, !this.cold);
  }

  private async timed(command: Command, env: NodeJS.ProcessEnv, repos: readonly string[]): Promise<[Figures, string]> {
    const before = repoBytes(repos);
    if (this.cold) await dropCaches();
    const m = await measure(command, env);
    // Write-back of this run must not slow the next tool's.
    await run({ file: 'sync', args: [] });
    const after = repoBytes(repos);
    const figures = { wallSeconds: m.wallSeconds, cpuSeconds: m.userSeconds + m.sysSeconds, maxRssBytes: m.maxRssBytes, repoBytes: after, newBytes: after - before };
    return [figures, m.stdout];
  }

  private async step(lane: Lane, row: Omit<Row, 'tool' | 'figures' | 'error'>, body: () => Promise<Figures>): Promise<void> {
    if (lane.failed) return;
    const label = `${row.dataset} ${row.scenario} ${lane.tool.name}`;
    try {
      const f = await body();
      this.rows.push({ ...row, tool: lane.tool.name, figures: f });
      console.log(
        `${label}: ${f.wallSeconds.toFixed(2)} s wall, ${f.cpuSeconds.toFixed(2)} s CPU, ` +
          `${(f.maxRssBytes / MiB).toFixed(0)} MiB RSS, repo ${(f.repoBytes / MiB).toFixed(1)} MiB (+${(f.newBytes / MiB).toFixed(1)})`,
      );
    } catch (e) {
      lane.failed = true;
      const error = e instanceof Error ? e.message : String(e);
      this.rows.push({ ...row, tool: lane.tool.name, error });
      console.log(`${label}: FAILED\n${error}`);
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

  private async restore(lane: Lane, source: TreeStats): Promise<Figures> {
    const target = join(lane.dir, 'restore');
    mkdirSync(target);
    if (!this.cold) scanTree(lane.repo, true);
    const [figures] = await this.timed(await lane.tool.restore(lane.repo, target, lane.env), lane.env, [lane.repo]);
    // Whatever layout the tool restores into, the target must hold exactly the source's files and bytes.
    const restored = scanTree(target);
    rmSync(target, { recursive: true });
    if (restored.files !== source.files || restored.bytes !== source.bytes)
      throw new Error(`restored ${restored.files} files / ${restored.bytes} bytes, expected ${source.files} / ${source.bytes}`);
    return figures;
  }

  /** Everything but the newest snapshot is forgotten (untimed), then the space is freed (timed). */
  private async prune(lane: Lane): Promise<Figures> {
    await run(lane.tool.forgetOlder(lane.repo), lane.env);
    const [figures] = await this.timed(lane.tool.prune(lane.repo), lane.env, [lane.repo]);
    const count = await lane.tool.snapshotCount(lane.repo, lane.env);
    if (count !== 1) throw new Error(`${lane.repo} has ${count} snapshots after forgetting all but the newest`);
    lane.snapshots = 1;
    return figures;
  }

  /** Coffer only: the first version written to three fresh destinations at once. */
  private async multi3(tool: Tool, row: Omit<Row, 'tool' | 'figures' | 'error'>): Promise<void> {
    const name = `${tool.name}-multi3`;
    const repos = ['a', 'b', 'c'].map((n) => join(WORK, name, n));
    const lane = await this.newLane(tool, name, repos).catch((e: unknown) => {
      this.rows.push({ ...row, tool: tool.name, error: e instanceof Error ? e.message : String(e) });
    });
    if (!lane) return;
    await this.step(lane, row, () => this.backup(lane, repos));
    rmSync(lane.dir, { recursive: true, force: true });
  }

  async dataset(d: Dataset, tools: readonly Tool[]): Promise<DatasetInfo> {
    let source = this.mount(d.versions[0]!);
    const first = source;
    const lanes: Lane[] = [];
    for (const tool of tools) {
      try {
        lanes.push(await this.newLane(tool, tool.name, [join(WORK, tool.name, 'repo')]));
      } catch (e) {
        this.rows.push({ dataset: d.name, scenario: 'initial', tool: tool.name, sourceFiles: 0, sourceBytes: 0, error: e instanceof Error ? e.message : String(e) });
      }
    }
    for (const scenario of d.scenarios) {
      if (scenario === 'incremental') source = this.mount(d.versions[1]!);
      const row = { dataset: d.name, scenario, sourceFiles: source.files, sourceBytes: source.bytes };
      if (scenario === 'multi3') for (const tool of tools.filter((t) => t.multiDestination)) await this.multi3(tool, row);
      // Tools take turns within each scenario, so they all see the same source and the same cache state.
      else
        for (const lane of lanes)
          await this.step(lane, row, () => (scenario === 'restore' ? this.restore(lane, source) : scenario === 'prune' ? this.prune(lane) : this.backup(lane, [lane.repo])));
    }
    this.slot.unmount();
    for (const lane of lanes) rmSync(lane.dir, { recursive: true, force: true });
    return { name: d.name, title: d.title, files: first.files, bytes: first.bytes };
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

async function main(): Promise<void> {
  const quick = opts.quick;
  const names = selectedDatasets(opts.corpus);
  const tools = selectedTools(opts.tools);
  if (tools.some((t) => t.name === 'coffer') && !process.env.COFFER_BENCH_CLI) {
    const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' });
    if (build.status !== 0) fail('npm run build failed; Coffer is benchmarked as the compiled package');
  }
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
  const bench = new Bench(opts.cold);
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      killRunning();
      bench.unmount();
      process.exit(130);
    });

  const datasets: DatasetInfo[] = [];
  for (const name of names) {
    // restic and borg need ~10 minutes on 10^6 files, which would break the 15-minute default budget; the
    // files target is absolute (no-change ≤ 30 s), so by default only Coffer runs the full-size tree.
    const baselines = name !== 'files' || quick || opts['files-baselines'];
    const dsTools = baselines ? tools : tools.filter((t) => t.name === 'coffer');
    if (dsTools.length === 0) continue;
    const d = name === 'kernel' ? kernelDataset(quick) : generatedDataset(name, quick);
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
