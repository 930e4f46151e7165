// RESULTS.md: absolute figures per dataset, Coffer/restic and Coffer/borg ratios, and the issue's targets.
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
  /** Repository size after the run (all destinations for multi3). */
  readonly repoBytes: number;
  /** Growth of the repository during the run. */
  readonly newBytes: number;
}

export interface Row {
  readonly dataset: DatasetName;
  readonly scenario: ScenarioName;
  readonly tool: ToolName;
  readonly sourceFiles: number;
  readonly sourceBytes: number;
  readonly figures?: Figures;
  readonly error?: string;
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
};

const num = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const table = (header: readonly string[], rows: readonly (readonly string[])[]): string =>
  [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');

function find(rows: readonly Row[], dataset: DatasetName, scenario: ScenarioName, tool: ToolName): Figures | undefined {
  return rows.find((r) => r.dataset === dataset && r.scenario === scenario && r.tool === tool)?.figures;
}

function absoluteTable(rows: readonly Row[], dataset: DatasetName): string {
  const lines = rows
    .filter((r) => r.dataset === dataset)
    .map((r) => {
      const f = r.figures;
      if (!f) return [SCENARIO_TITLES[r.scenario], r.tool, `failed: ${r.error?.split('\n')[0] ?? '?'}`, '', '', '', '', '', ''];
      return [
        SCENARIO_TITLES[r.scenario],
        r.tool,
        num(f.wallSeconds, 2),
        num(f.cpuSeconds, 2),
        num(f.maxRssBytes / MiB, 0),
        num(f.repoBytes / MiB, 1),
        num(f.newBytes / MiB, 1),
        num(r.sourceBytes / MiB / f.wallSeconds, 0),
        num(r.sourceFiles / f.wallSeconds / 1000, 1),
      ];
    });
  return table(['Scenario', 'Tool', 'Wall s', 'CPU s', 'Peak RSS MiB', 'Repo MiB', 'New MiB', 'Source MiB/s', 'k files/s'], lines);
}

type Metric = (f: Figures) => number;
const METRICS: readonly [string, Metric][] = [
  ['wall', (f) => f.wallSeconds],
  ['CPU', (f) => f.cpuSeconds],
  ['RSS', (f) => f.maxRssBytes],
  ['new bytes', (f) => f.newBytes],
];

function ratio(a: Figures | undefined, b: Figures | undefined, metric: Metric): number | undefined {
  return a && b ? metric(a) / metric(b) : undefined;
}

function ratioTable(info: RunInfo): string {
  const lines: string[][] = [];
  for (const d of info.datasets)
    for (const scenario of Object.keys(SCENARIO_TITLES) as ScenarioName[]) {
      const c = find(info.rows, d.name, scenario, 'coffer');
      const r = find(info.rows, d.name, scenario, 'restic');
      const b = find(info.rows, d.name, scenario, 'borg');
      if (!c || (!r && !b)) continue;
      lines.push([d.name, SCENARIO_TITLES[scenario], ...METRICS.flatMap(([, m]) => [num(ratio(c, r, m), 2), num(ratio(c, b, m), 2)])]);
    }
  if (lines.length === 0) return '_No scenario has figures for Coffer and a baseline._';
  return table(['Dataset', 'Scenario', ...METRICS.flatMap(([name]) => [`${name} C/r`, `${name} C/b`])], lines);
}

interface Target {
  readonly what: string;
  readonly limit: string;
  readonly measured: number | undefined;
  readonly ok: ((v: number) => boolean) | undefined;
  readonly note?: string;
}

/** The repository after a dataset's last single-destination backup. */
function finalRepo(info: RunInfo, dataset: DatasetName, tool: ToolName): Figures | undefined {
  return info.rows.filter((r) => r.dataset === dataset && r.tool === tool && r.scenario !== 'multi3' && r.scenario !== 'restore' && r.scenario !== 'prune' && r.figures).at(-1)
    ?.figures;
}

function worstRss(info: RunInfo, dataset: DatasetName): [number | undefined, string] {
  let worst: [number | undefined, string] = [undefined, ''];
  for (const scenario of Object.keys(SCENARIO_TITLES) as ScenarioName[]) {
    const v = ratio(find(info.rows, dataset, scenario, 'coffer'), find(info.rows, dataset, scenario, 'restic'), (f) => f.maxRssBytes);
    if (v !== undefined && (worst[0] === undefined || v > worst[0])) worst = [v, SCENARIO_TITLES[scenario]];
  }
  return worst;
}

function targets(info: RunInfo): Target[] {
  const rows = info.rows;
  const vsRestic = (dataset: DatasetName, scenario: ScenarioName): number | undefined =>
    ratio(find(rows, dataset, scenario, 'coffer'), find(rows, dataset, scenario, 'restic'), (f) => f.wallSeconds);
  const atMost = (limit: number) => (v: number) => v <= limit;
  const list: Target[] = [
    { what: 'kernel initial backup, wall time vs restic', limit: '≤ 0.33', measured: vsRestic('kernel', 'initial'), ok: atMost(1 / 3) },
    { what: 'kernel no-change backup, wall time vs restic', limit: '≤ 0.33', measured: vsRestic('kernel', 'nochange'), ok: atMost(1 / 3) },
    { what: 'kernel incremental backup, wall time vs restic', limit: '≤ 0.33', measured: vsRestic('kernel', 'incremental'), ok: atMost(1 / 3) },
    { what: 'kernel full restore, wall time vs restic', limit: '≤ 0.5', measured: vsRestic('kernel', 'restore'), ok: atMost(0.5) },
  ];
  for (const d of info.datasets)
    list.push({
      what: `${d.name} repository size vs restic`,
      limit: '≤ 1.05',
      measured: ratio(finalRepo(info, d.name, 'coffer'), finalRepo(info, d.name, 'restic'), (f) => f.repoBytes),
      ok: atMost(1.05),
    });
  for (const d of info.datasets) {
    const [v, scenario] = worstRss(info, d.name);
    list.push({ what: `${d.name} peak RSS vs restic (worst scenario)`, limit: '≤ 1.5', measured: v, ok: atMost(1.5), note: scenario });
  }
  const photos = vsRestic('photos', 'initial');
  list.push({
    what: 'incompressible large files (photos initial backup), throughput vs restic',
    limit: '≥ 2',
    measured: photos === undefined ? undefined : 1 / photos,
    ok: (v) => v >= 2,
  });
  list.push({
    what: 'kernel backup to 3 destinations, wall time vs Coffer single destination',
    limit: '≤ 1.2',
    measured: ratio(find(rows, 'kernel', 'multi3', 'coffer'), find(rows, 'kernel', 'initial', 'coffer'), (f) => f.wallSeconds),
    ok: atMost(1.2),
  });
  const million = info.smallFiles === 1_000_000;
  list.push({
    what: `no-change backup of ${info.smallFiles.toLocaleString('en-US')} small files, seconds`,
    limit: '≤ 30 s (10^6 files)',
    measured: find(rows, 'files', 'nochange', 'coffer')?.wallSeconds,
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
    ['Target', 'Limit', 'Measured', ''],
    targets(info).map((t) => [
      t.what + (t.note ? ` (${t.note})` : ''),
      t.limit,
      num(t.measured, 2),
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
    `Generated by \`${info.command}\` on ${info.date} in ${(info.seconds / 60).toFixed(1)} minutes. Figures are from one run; warm page cache unless the command says \`--cold\`.`,
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
