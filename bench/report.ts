// RESULTS.md: absolute figures per dataset, Coffer/restic and Coffer/borg ratios, and the issue's targets.
// Every scenario runs several times, the tools taking turns run by run; a figure is shown as the median
// with the range of the runs, and a ratio pairs each Coffer run with the baseline's run of the same round.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatasetName, ScenarioName } from './corpus.ts';
import type { PruneMemoryResult } from './prune-memory.ts';
import type { IndexMemoryResult } from './index-memory.ts';
import { median, type StartupPair, type StartupResult } from './startup.ts';
import type { ToolName } from './tools.ts';

export interface Figures {
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly maxRssBytes: number;
  /** Repository size after the run (all destinations for multi3); undefined for a remote repository. */
  readonly repoBytes?: number;
  /** Growth of the repository during the run. */
  readonly newBytes?: number;
  /** Requests to the storage server (remote repositories). */
  readonly requests?: number;
}

export interface Row {
  readonly dataset: DatasetName;
  readonly scenario: ScenarioName;
  readonly tool: ToolName;
  readonly sourceFiles: number;
  readonly sourceBytes: number;
  /** One per run, in the order they ran. */
  readonly runs: Figures[];
  /** Why the runs stopped, when one failed. */
  error?: string;
}

export interface DatasetInfo {
  readonly name: DatasetName;
  readonly title: string;
  readonly files: number;
  readonly bytes: number;
}

export interface RunInfo {
  readonly date: string;
  readonly command: string;
  /** Runs of each scenario (--runs). */
  readonly runs: number;
  /** The whole run, corpus preparation included. */
  readonly seconds: number;
  readonly machine: readonly string[];
  readonly versions: readonly string[];
  readonly settings: readonly string[];
  readonly datasets: readonly DatasetInfo[];
  readonly rows: readonly Row[];
  readonly indexMemory?: IndexMemoryResult;
  readonly pruneMemory?: PruneMemoryResult;
  /** Files in the small-files dataset, to tell whether the 10^6-file target applies. */
  readonly smallFiles: number;
  readonly startup?: StartupResult;
}

const MiB = 2 ** 20;
const SCENARIO_TITLES: Record<ScenarioName, string> = {
  initial: 'initial backup',
  nochange: 'no-change backup',
  multi3: 'initial backup, 3 destinations',
  incremental: 'incremental backup',
  restore: 'full restore',
  prune: 'prune after forgetting the first version',
  snapshots: '`snapshots`',
  ls: '`ls` of the newest snapshot',
  'restore-file': 'restore of one file',
};

const num = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

/** The median with the range of the runs: `0.85 (0.80–0.91)`; a single value alone. */
function spread(values: readonly number[], digits: number): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return '—';
  const m = num(median(finite), digits);
  return finite.length === 1 ? m : `${m} (${num(Math.min(...finite), digits)}–${num(Math.max(...finite), digits)})`;
}

const medianOf = (values: readonly number[]): number | undefined => (values.length === 0 ? undefined : median(values));
const table = (header: readonly string[], rows: readonly (readonly string[])[]): string =>
  [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');

function find(rows: readonly Row[], dataset: DatasetName, scenario: ScenarioName, tool: ToolName): Row | undefined {
  return rows.find((r) => r.dataset === dataset && r.scenario === scenario && r.tool === tool && r.runs.length > 0);
}

type Metric = (f: Figures) => number | undefined;

function values(row: Row | undefined, metric: Metric): number[] {
  return (row?.runs ?? []).map(metric).filter((v): v is number => v !== undefined && Number.isFinite(v));
}

const inMiB = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : bytes / MiB);
/** Scenarios that read or write the whole source, whose throughput means something. */
const WHOLE_SOURCE: readonly ScenarioName[] = ['initial', 'nochange', 'multi3', 'incremental', 'restore'];

function absoluteTable(rows: readonly Row[], dataset: DatasetName): string {
  const ofDataset = rows.filter((r) => r.dataset === dataset);
  const remote = ofDataset.some((r) => r.runs.some((f) => f.requests !== undefined));
  const lines = ofDataset.map((r) => {
    const wall = WHOLE_SOURCE.includes(r.scenario) ? medianOf(values(r, (f) => f.wallSeconds)) : undefined;
    const failed = r.error === undefined ? '' : ` (failed after ${r.runs.length} run${r.runs.length === 1 ? '' : 's'}: ${r.error.split('\n')[0]})`;
    return [
      SCENARIO_TITLES[r.scenario] + failed,
      r.tool,
      String(r.runs.length),
      spread(values(r, (f) => f.wallSeconds), 2),
      spread(values(r, (f) => f.cpuSeconds), 2),
      spread(values(r, (f) => f.maxRssBytes / MiB), 0),
      ...(remote
        ? [spread(values(r, (f) => f.requests), 0)]
        : [num(inMiB(medianOf(values(r, (f) => f.repoBytes))), 1), num(inMiB(medianOf(values(r, (f) => f.newBytes))), 1)]),
      num(wall === undefined ? undefined : r.sourceBytes / MiB / wall, 0),
      num(wall === undefined ? undefined : r.sourceFiles / wall / 1000, 1),
    ];
  });
  const sizes = remote ? ['Requests'] : ['Repo MiB', 'New MiB'];
  return table(['Scenario', 'Tool', 'Runs', 'Wall s, median (min–max)', 'CPU s', 'Peak RSS MiB', ...sizes, 'Source MiB/s', 'k files/s'], lines);
}

const METRICS: readonly [string, Metric][] = [
  ['wall', (f) => f.wallSeconds],
  ['CPU', (f) => f.cpuSeconds],
  ['RSS', (f) => f.maxRssBytes],
  ['new bytes', (f) => f.newBytes],
];

/** Coffer's run i against the baseline's run i (the same round), for every round both completed. */
function pairedRatios(a: Row | undefined, b: Row | undefined, metric: Metric): number[] {
  if (!a || !b) return [];
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.runs.length, b.runs.length); i++) {
    const [x, y] = [metric(a.runs[i]!), metric(b.runs[i]!)];
    if (x !== undefined && y !== undefined && Number.isFinite(x / y)) ratios.push(x / y);
  }
  return ratios;
}

function ratioTable(info: RunInfo): string {
  const lines: string[][] = [];
  for (const d of info.datasets)
    for (const scenario of Object.keys(SCENARIO_TITLES) as ScenarioName[]) {
      const c = find(info.rows, d.name, scenario, 'coffer');
      const r = find(info.rows, d.name, scenario, 'restic');
      const b = find(info.rows, d.name, scenario, 'borg');
      if (!c || (!r && !b)) continue;
      lines.push([d.name, SCENARIO_TITLES[scenario], ...METRICS.flatMap(([, m]) => [spread(pairedRatios(c, r, m), 2), spread(pairedRatios(c, b, m), 2)])]);
    }
  if (lines.length === 0) return '_No scenario has figures for Coffer and a baseline._';
  return table(['Dataset', 'Scenario', ...METRICS.flatMap(([name]) => [`${name} C/r`, `${name} C/b`])], lines);
}

interface Target {
  readonly what: string;
  readonly limit: string;
  /** The median (of the runs' ratios, for a ratio). */
  readonly measured: number | undefined;
  /** Every run's value, for the range. */
  readonly runs?: readonly number[];
  readonly ok: ((v: number) => boolean) | undefined;
  readonly note?: string;
}

/** The repository after a dataset's last single-destination backup. */
function finalRepo(info: RunInfo, dataset: DatasetName, tool: ToolName): number | undefined {
  const backups: readonly ScenarioName[] = ['initial', 'nochange', 'incremental'];
  return info.rows.filter((r) => r.dataset === dataset && r.tool === tool && backups.includes(r.scenario) && r.runs.length > 0).at(-1)?.runs.at(-1)?.repoBytes;
}

function worstRss(info: RunInfo, dataset: DatasetName): { ratios: number[]; scenario: string } | undefined {
  let worst: { ratios: number[]; scenario: string } | undefined;
  for (const scenario of Object.keys(SCENARIO_TITLES) as ScenarioName[]) {
    const ratios = pairedRatios(find(info.rows, dataset, scenario, 'coffer'), find(info.rows, dataset, scenario, 'restic'), (f) => f.maxRssBytes);
    if (ratios.length > 0 && (worst === undefined || median(ratios) > median(worst.ratios))) worst = { ratios, scenario: SCENARIO_TITLES[scenario] };
  }
  return worst;
}

/** Issue 12's speed targets: Coffer's wall time over restic's, on every corpus. */
const SPEED_TARGETS: readonly [ScenarioName, number, string][] = [
  ['initial', 0.5, '≤ 0.5'],
  ['incremental', 0.5, '≤ 0.5'],
  ['nochange', 1 / 3, '≤ 0.33'],
  ['restore', 0.5, '≤ 0.5'],
];
/** The remote-latency scenario: each command within half of restic's time with its cache. */
const REMOTE_TARGETS: readonly ScenarioName[] = ['snapshots', 'ls', 'nochange', 'restore-file'];

function targets(info: RunInfo): Target[] {
  const rows = info.rows;
  const atMost = (limit: number) => (v: number) => v <= limit;
  const hasRows = (dataset: DatasetName, scenario: ScenarioName): boolean => rows.some((r) => r.dataset === dataset && r.scenario === scenario);
  const vsRestic = (dataset: DatasetName, scenario: ScenarioName, what: string, limit: number, shown: string): Target => {
    const ratios = pairedRatios(find(rows, dataset, scenario, 'coffer'), find(rows, dataset, scenario, 'restic'), (f) => f.wallSeconds);
    return { what, limit: shown, measured: medianOf(ratios), runs: ratios, ok: atMost(limit) };
  };
  const list: Target[] = [];
  for (const d of info.datasets.filter((d) => d.name !== 'remote'))
    for (const [scenario, limit, shown] of SPEED_TARGETS)
      if (hasRows(d.name, scenario)) list.push(vsRestic(d.name, scenario, `${d.name} ${SCENARIO_TITLES[scenario]}, wall time vs restic`, limit, shown));
  if (info.datasets.some((d) => d.name === 'remote'))
    for (const scenario of REMOTE_TARGETS) list.push(vsRestic('remote', scenario, `remote (+20 ms per request) ${SCENARIO_TITLES[scenario]}, wall time vs restic`, 0.5, '≤ 0.5'));
  for (const d of info.datasets.filter((d) => d.name !== 'remote')) {
    const [c, r] = [finalRepo(info, d.name, 'coffer'), finalRepo(info, d.name, 'restic')];
    list.push({ what: `${d.name} repository size vs restic`, limit: '≤ 1.05', measured: c !== undefined && r !== undefined ? c / r : undefined, ok: atMost(1.05) });
  }
  for (const d of info.datasets) {
    const worst = worstRss(info, d.name);
    list.push({ what: `${d.name} peak RSS vs restic (worst scenario)`, limit: '≤ 1.5', measured: worst && median(worst.ratios), runs: worst?.ratios, ok: atMost(1.5), note: worst?.scenario });
  }
  const throughput = pairedRatios(find(rows, 'photos', 'initial', 'restic'), find(rows, 'photos', 'initial', 'coffer'), (f) => f.wallSeconds);
  list.push({
    what: 'incompressible large files (photos initial backup), throughput vs restic',
    limit: '≥ 2',
    measured: medianOf(throughput),
    runs: throughput,
    ok: (v) => v >= 2,
  });
  const [multi, single] = [find(rows, 'kernel', 'multi3', 'coffer'), find(rows, 'kernel', 'initial', 'coffer')];
  const [multiWall, singleWall] = [medianOf(values(multi, (f) => f.wallSeconds)), medianOf(values(single, (f) => f.wallSeconds))];
  list.push({
    what: 'kernel backup to 3 destinations, wall time vs Coffer single destination (medians)',
    limit: '≤ 1.2',
    measured: multiWall !== undefined && singleWall !== undefined ? multiWall / singleWall : undefined,
    ok: atMost(1.2),
  });
  const million = info.smallFiles === 1_000_000;
  list.push({
    what: `no-change backup of ${info.smallFiles.toLocaleString('en-US')} small files, seconds`,
    limit: '≤ 30 s (10^6 files)',
    measured: medianOf(values(find(rows, 'files', 'nochange', 'coffer'), (f) => f.wallSeconds)),
    runs: values(find(rows, 'files', 'nochange', 'coffer'), (f) => f.wallSeconds),
    ok: million ? atMost(30) : undefined,
    note: million ? undefined : 'not 10^6 files: no verdict',
  });
  const { snapshots, version } = info.startup ?? {};
  list.push({
    what: '`coffer snapshots` on a small local repository, median wall time vs `restic snapshots`',
    limit: '≤ 1',
    measured: snapshots && median(snapshots.seconds) / median(snapshots.baselineSeconds),
    ok: atMost(1),
  });
  list.push({
    what: '`coffer --version`, median wall time minus `node -e 0`, ms',
    limit: '≤ 50',
    measured: version && (median(version.seconds) - median(version.baselineSeconds)) * 1000,
    ok: atMost(50),
  });
  const im = info.indexMemory;
  list.push({
    what: `blob index bytes per blob at ${im ? im.count.toLocaleString('en-US') : '?'} blobs (RSS growth: ${num(im?.rssBytesPerBlob, 1)})`,
    limit: '≤ 64 (10^7 blobs)',
    measured: im?.bytesPerBlob,
    ok: im?.count === 10_000_000 ? atMost(64) : undefined,
    note: im && im.count !== 10_000_000 ? 'not 10^7 blobs: no verdict' : undefined,
  });
  const pm = info.pruneMemory;
  list.push({
    what: `prune of ${pm ? pm.blobs.toLocaleString('en-US') : '?'} blobs after forgetting half of the snapshots, peak RSS in MiB (${pm ? `${num(pm.pruneSeconds, 1)} s wall, ${num(pm.pruneCpuSeconds, 1)} s CPU` : 'not run'})`,
    limit: '≤ 1024 (10^7 blobs)',
    measured: pm ? pm.pruneMaxRssBytes / MiB : undefined,
    ok: pm?.blobs === 10_000_000 ? atMost(1024) : undefined,
    note: pm && pm.blobs !== 10_000_000 ? 'not 10^7 blobs: no verdict' : undefined,
  });
  return list;
}

/** The targets as Markdown rows: ✓/✗ where measured, — where a figure is missing. */
export function targetTable(info: RunInfo): string {
  return table(
    ['Target', 'Limit', 'Measured (median)', 'Range of the runs', ''],
    targets(info).map((t) => [
      t.what + (t.note ? ` (${t.note})` : ''),
      t.limit,
      num(t.measured, 2),
      t.runs && t.runs.length > 1 ? `${num(Math.min(...t.runs), 2)}–${num(Math.max(...t.runs), 2)}` : '',
      t.measured === undefined || !t.ok ? '—' : t.ok(t.measured) ? '✓' : '✗',
    ]),
  );
}

const range = (values: readonly number[]): string => `${median(values).toFixed(3)} (${Math.min(...values).toFixed(3)}–${Math.max(...values).toFixed(3)})`;

function startupTable(pairs: readonly StartupPair[]): string {
  return table(
    ['Command', 'Wall s, median (min–max)', 'Beside', 'Wall s, median (min–max)', 'Ratio of medians'],
    pairs.map((p) => [`\`${p.command}\``, range(p.seconds), `\`${p.baseline}\``, range(p.baselineSeconds), num(median(p.seconds) / median(p.baselineSeconds), 2)]),
  );
}

const PROFILE = join(import.meta.dirname, 'PROFILE.md');
const BOUNDS_HEADING = '## What bounds each missed target';

/**
 * The explanation of missed targets, kept with the profiles in PROFILE.md (written by hand after
 * profiling) and repeated here so that the results and their explanation travel together.
 */
function boundsSection(): string[] {
  if (!existsSync(PROFILE)) return [];
  const text = readFileSync(PROFILE, 'utf8');
  const start = text.indexOf(BOUNDS_HEADING);
  if (start < 0) return [];
  const body = text.slice(start + BOUNDS_HEADING.length).split(/\n## /)[0]!.trim();
  return ['### What bounds each missed target (from bench/PROFILE.md, written at the last profiling; figures there may be from an earlier run)', '', body, ''];
}

export function renderReport(info: RunInfo): string {
  const out = [
    '# Coffer benchmark results',
    '',
    `Generated by \`${info.command}\` on ${info.date} in ${(info.seconds / 60).toFixed(1)} minutes; warm page cache unless the command says \`--cold\`.`,
    '',
    info.runs === 1
      ? 'Every figure is from a single run: close ratios (within ~30 %) can flip between runs.'
      : `Each scenario ran ${info.runs} times, the tools taking turns run by run (Coffer, restic, borg, Coffer, restic, borg, …). A figure is the median of the runs with their range (min–max); a ratio pairs each Coffer run with the baseline's run of the same round, and its median and range are over those pairs. The targets use the medians.`,
    '',
    '## Machine',
    '',
    ...info.machine.map((l) => `- ${l}`),
    '',
    '## Tools and settings',
    '',
    ...info.versions.map((l) => `- ${l}`),
    ...info.settings.map((l) => `- ${l}`),
    '- Each tool runs with its own empty HOME (its caches and config live there) and a fresh repository per dataset, on the same disk as the source.',
    '- Wall time: monotonic clock around the command. CPU (user+sys) and peak RSS: `/usr/bin/time -v` (kernel rusage of the process tree; RSS is the largest single process). Repository size: bytes of all files in the repository directory; new = growth during the run.',
    '',
    '## Targets',
    '',
    targetTable(info),
    '',
    ...boundsSection(),
    '## Ratios (Coffer / restic = C/r, Coffer / borg = C/b; below 1 is better for Coffer)',
    '',
    ratioTable(info),
    '',
    '## Absolute figures',
  ];
  for (const d of info.datasets)
    out.push(
      '',
      `### ${d.name}: ${d.title}`,
      '',
      `${d.files.toLocaleString('en-US')} file${d.files === 1 ? '' : 's'}, ${(d.bytes / MiB).toFixed(0)} MiB in the first version.`,
      '',
      absoluteTable(info.rows, d.name),
    );
  const pairs = [info.startup?.snapshots, info.startup?.version].filter((p) => p !== undefined);
  if (pairs.length > 0) {
    out.push('', '### Start-up', '', `Each pair ran interleaved, ${pairs[0]!.seconds.length} counted runs each after one warm-up pair; the small repository holds two snapshots of 50 files.`, '', startupTable(pairs));
  }
  const failures = info.rows.filter((r) => r.error);
  if (failures.length > 0) {
    out.push('', '## Failures', '');
    for (const f of failures) out.push(`- ${f.dataset} ${SCENARIO_TITLES[f.scenario]}, ${f.tool}:`, '', '  ```', ...f.error!.split('\n').map((l) => `  ${l}`), '  ```');
  }
  return out.join('\n') + '\n';
}
