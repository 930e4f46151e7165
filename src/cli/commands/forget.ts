import { Command, Option } from 'commander';
import os from 'node:os';
import { checkForgetOptions, forgetSnapshots, planForgetOptions, type ForgetGroup, type ForgetResult } from '../../engine/forget.ts';
import { isEmptyPolicy, parseDuration, validatePolicy, type RetentionPolicy } from '../../engine/retention.ts';
import { DEFAULT_GROUP_BY, describeGroup, parseGroupBy, type GroupField } from '../../engine/snapshot-filter.ts';
import { defaultFileName } from '../../config/automation.ts';
import type { PlanConfig } from '../../config/config-file.ts';
import { snapshotPathsOf } from '../../engine/backup/stream-source.ts';
import type { StoredSnapshot } from '../../repo/repository.ts';
import type { SnapshotFilter } from '../../repo/snapshot-ref.ts';
import { EXIT_PARTIAL, UsageError } from '../exit-codes.ts';
import { formatTable, formatTime } from '../format.ts';
import { printJson, printSummary, printWarning } from '../output.ts';
import { addRepoOptions, collect, selectedPlan, withRepository, type RepoOptions } from '../repo-options.ts';
import { planPaths } from '../selection-options.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';
import { addPruneOptions, pruneLimits, runPrune, type PruneCliOptions } from './prune.ts';

const COUNT_FLAGS = [
  ['keep-last', 'keepLast', 'the N newest snapshots'],
  ['keep-hourly', 'keepHourly', 'the newest snapshot of each of the last N hours that have one'],
  ['keep-daily', 'keepDaily', 'the newest snapshot of each of the last N days that have one'],
  ['keep-weekly', 'keepWeekly', 'the newest snapshot of each of the last N weeks that have one'],
  ['keep-monthly', 'keepMonthly', 'the newest snapshot of each of the last N months that have one'],
  ['keep-yearly', 'keepYearly', 'the newest snapshot of each of the last N years that have one'],
] as const;

const WITHIN_FLAGS = [
  ['keep-within', 'keepWithin', 'every snapshot taken within DURATION of the newest (30d, 1y6m, 2w, 12h)'],
  ['keep-within-hourly', 'keepWithinHourly', 'the newest snapshot of each hour within DURATION of the newest'],
  ['keep-within-daily', 'keepWithinDaily', 'the newest snapshot of each day within DURATION of the newest'],
  ['keep-within-weekly', 'keepWithinWeekly', 'the newest snapshot of each week within DURATION of the newest'],
  ['keep-within-monthly', 'keepWithinMonthly', 'the newest snapshot of each month within DURATION of the newest'],
  ['keep-within-yearly', 'keepWithinYearly', 'the newest snapshot of each year within DURATION of the newest'],
] as const;

type PolicyFlags = { -readonly [K in keyof RetentionPolicy]?: string | string[] };

export interface ForgetCliOptions extends RepoOptions, FilterOptions, PolicyFlags, PruneCliOptions {
  readonly groupBy?: string;
  readonly dryRun?: boolean;
  readonly prune?: boolean;
  readonly plan?: string;
  readonly config?: string;
}

function keepCount(flag: string) {
  return (text: string): number => {
    if (text === 'unlimited') return -1;
    const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
    if (!(Number.isSafeInteger(n) && n >= -1)) throw new UsageError(`--${flag} takes a number of snapshots (or unlimited), not "${text}"`);
    return n;
  };
}

function policyFrom(options: ForgetCliOptions): RetentionPolicy {
  const policy: Record<string, unknown> = {};
  for (const [, key] of [...COUNT_FLAGS, ...WITHIN_FLAGS]) if (options[key] !== undefined) policy[key] = options[key];
  if (options.keepTag?.length) policy.keepTag = options.keepTag;
  return policy as RetentionPolicy;
}

function duration(flag: string) {
  return (text: string): string => {
    try {
      parseDuration(text);
    } catch (err) {
      throw new UsageError(`--${flag}: ${(err as Error).message}`);
    }
    return text;
  };
}

interface ForgetSettings {
  readonly policy: RetentionPolicy;
  readonly filter: SnapshotFilter;
  readonly groupBy: GroupField[];
  readonly sameSourcesAs?: { readonly host: string; readonly paths: readonly string[] };
}

/**
 * Policy, filter and grouping: from the command line, else from the plan. A plan's own snapshots are
 * exactly those of its host and of the paths its backup records (its paths and its streams' /NAME, as
 * the backup and the daemon's retention resolve them), not every snapshot that includes its paths:
 * another plan backing up a superset on the same host is not this plan's. --path given with --plan
 * filters as it does without.
 */
function settingsOf(options: ForgetCliOptions, plan: PlanConfig | undefined, ids: string[], groupByGiven: boolean): ForgetSettings {
  const fromFlags = policyFrom(options);
  const cliFilter = filterOf(options);
  const cliGroupBy = groupByGiven && options.groupBy !== undefined ? parseGroupBy(options.groupBy) : undefined;
  if (!plan) return { policy: fromFlags, filter: cliFilter, groupBy: cliGroupBy ?? [...DEFAULT_GROUP_BY] };
  const host = cliFilter.host ?? plan.host ?? os.hostname();
  const ownPaths = !cliFilter.paths?.length;
  const owner = { host, paths: ownPaths ? snapshotPathsOf(planPaths(plan), (plan.sources ?? []).map(defaultFileName)) : cliFilter.paths! };
  const flagsGiven = !isEmptyPolicy(fromFlags) || ids.length > 0;
  if (!flagsGiven && !plan.retention) {
    throw new UsageError(`plan ${options.plan} has no retention policy; add one to the configuration (retention: {keepDaily: 7, keepWeekly: 4}) or give --keep-… options`);
  }
  const planned = planForgetOptions(flagsGiven ? fromFlags : plan.retention!, owner);
  validatePolicy(planned.policy!);
  return { policy: planned.policy!, filter: { ...planned.filter, tags: cliFilter.tags ?? [] }, groupBy: cliGroupBy ?? planned.groupBy.slice(), ...(ownPaths ? { sameSourcesAs: owner } : {}) };
}

function snapshotJson(s: StoredSnapshot): Record<string, unknown> {
  return { id: s.id, time: s.snapshot.time, host: s.snapshot.host, paths: s.snapshot.paths, tags: s.snapshot.tags };
}

function row(s: StoredSnapshot, reasons?: readonly string[]): string[] {
  return [s.id.slice(0, 8), formatTime(s.snapshot.time), s.snapshot.host, s.snapshot.tags.join(','), s.snapshot.paths.join(' '), ...(reasons ? [reasons.join(', ')] : [])];
}

function printGroup(group: ForgetGroup, dryRun: boolean, json: boolean): void {
  if (json) {
    printJson({
      type: 'group',
      ...group.key,
      keep: group.keep.map((k) => ({ ...snapshotJson(k.snapshot), reasons: k.reasons })),
      remove: group.remove.map(snapshotJson),
    });
    return;
  }
  printSummary(describeGroup(group.key));
  if (group.keep.length > 0) {
    printSummary(`keep ${group.keep.length} snapshot${group.keep.length === 1 ? '' : 's'}:`);
    printSummary(formatTable(['ID', 'Time', 'Host', 'Tags', 'Paths', 'Reasons'], group.keep.map((k) => row(k.snapshot, k.reasons))));
  }
  if (group.remove.length > 0) {
    printSummary(`${dryRun ? 'would remove' : 'remove'} ${group.remove.length} snapshot${group.remove.length === 1 ? '' : 's'}:`);
    printSummary(formatTable(['ID', 'Time', 'Host', 'Tags', 'Paths'], group.remove.map((s) => row(s))));
  }
  printSummary();
}

function report(result: ForgetResult, dryRun: boolean, json: boolean): void {
  for (const group of result.groups) printGroup(group, dryRun, json);
  const failed = result.replicas.filter((r) => r.error);
  const kept = result.groups.reduce((n, g) => n + g.keep.length, 0);
  if (json) {
    printJson({ type: 'summary', dryRun, kept, removed: result.removed.length, ...(result.record ? { record: result.record } : {}), replicas: result.replicas });
  } else {
    for (const r of failed) printWarning(`${r.location}: not changed: ${r.error}; the next prune with it reachable (or sync) removes the snapshots there`);
    const n = result.removed.length;
    if (dryRun) printSummary(n === 0 ? 'nothing to remove' : `would remove ${n} snapshot${n === 1 ? '' : 's'} (dry run: nothing was changed)`);
    else printSummary(n === 0 ? 'nothing to remove' : `removed ${n} snapshot${n === 1 ? '' : 's'}; coffer prune frees the data no snapshot needs any more`);
  }
  if (failed.length > 0) process.exitCode = EXIT_PARTIAL;
}

export function forgetCommand(): Command {
  const command = addFilterOptions(addRepoOptions(new Command('forget').description('remove snapshots by retention policy or by id (prune frees their data)')))
    .argument('[snapshots...]', 'snapshot ids (or unique prefixes) to remove, instead of a policy');
  for (const [flag, , help] of COUNT_FLAGS) command.addOption(new Option(`--${flag} <n>`, `keep ${help}`).argParser(keepCount(flag)));
  for (const [flag, , help] of WITHIN_FLAGS) command.addOption(new Option(`--${flag} <duration>`, `keep ${help}`).argParser(duration(flag)));
  return addPruneOptions(command
    .addOption(new Option('--keep-tag <tags>', 'keep snapshots with these tags (a,b needs both; repeatable)').argParser(collect))
    .option('--group-by <fields>', "apply the policy per group of host, paths and/or tags ('' for one group)", 'host,paths')
    .option('-n, --dry-run', 'show what would be kept and removed, change nothing')
    .option('--prune', 'prune straight afterwards, freeing the space at once if no other writer is running'))
    .addHelpText('after', "\nWith --plan and no --keep-… options, the plan's retention policy applies to the plan's own snapshots.")
    .action(async (ids: string[], options: ForgetCliOptions, cmd: Command) => {
      const plan = await selectedPlan(options);
      const settings = settingsOf(options, plan, ids, cmd.getOptionValueSource('groupBy') === 'cli');
      // Before the passphrase is asked for: a forget without a policy would only be refused after it.
      checkForgetOptions({ ids, policy: settings.policy });
      // And a --prune whose limits are wrong must not leave the snapshots forgotten and the space taken.
      if (options.prune) pruneLimits(options);
      await withRepository(options, false, async (repo) => {
        const result = await forgetSnapshots(repo, { ids, ...settings, dryRun: options.dryRun ?? false });
        report(result, options.dryRun ?? false, options.json ?? false);
        if (options.prune) {
          // A dry run's prune leaves out the snapshots the dry forget would have removed.
          await runPrune(repo, options, new Set(result.removed));
        }
      });
    });
}
