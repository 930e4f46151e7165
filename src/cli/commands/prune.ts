import { Command } from 'commander';
import { PruneRun, DEFAULT_MAX_UNUSED, type PruneProgress, type PruneResult, type UnusedLimit } from '../../engine/prune/prune.ts';
import type { Repository } from '../../repo/repository.ts';
import { EXIT_INTERRUPTED, EXIT_PARTIAL, UsageError } from '../exit-codes.ts';
import { formatBytes, formatDuration, parseSize } from '../format.ts';
import { interruptSignal } from '../interrupt.ts';
import { every, printJson, printSummary, printWarning, StatusLine } from '../output.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';

export interface PruneCliOptions {
  readonly maxUnused?: string;
  readonly maxRepackSize?: string;
  readonly dryRun?: boolean;
}

export function parseUnusedLimit(text: string): UnusedLimit {
  if (text === 'unlimited') return { kind: 'unlimited' };
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    if (value <= 100) return { kind: 'percent', percent: value };
  }
  // A bare number other than 0 is most likely a percentage without its sign: 5 bytes would repack nearly everything.
  if (/^\d+(?:\.\d+)?$/.test(text) && Number(text) !== 0) throw new UsageError(`--max-unused ${text}: give its unit, ${text}% for a percentage of the used data or ${text}B for bytes`);
  const bytes = parseSize(text);
  if (!percent && bytes !== undefined) return { kind: 'bytes', bytes };
  throw new UsageError(`--max-unused takes a percentage (5%), a size (2G) or unlimited, not "${text}"`);
}

/** Prune's own options, shared with `forget --prune`. */
export function addPruneOptions(command: Command): Command {
  return command
    .option('--max-unused <limit>', 'unused space to tolerate after pruning: a percentage of the used data, a size, or unlimited', '5%')
    .option('--max-repack-size <size>', 'read at most this much (e.g. 10G) for repacking');
}

function statusText(p: PruneProgress): string {
  const count = p.total > 0 ? ` ${p.done}/${p.total}` : p.done > 0 ? ` ${p.done}` : '';
  const bytes = p.bytesTotal > 0 ? ` ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}` : '';
  return `[${formatDuration(p.elapsedMs / 1000)}] ${p.stage}${count}${bytes}`;
}

function localTime(iso: string): string {
  return new Date(iso).toLocaleString();
}

function report(r: PruneResult, json: boolean): void {
  if (json) {
    printJson({ type: 'summary', ...r });
    return;
  }
  const would = r.dryRun ? 'would ' : '';
  printSummary(`repository: ${r.before.packs} packs, ${formatBytes(r.before.bytes)}; used ${formatBytes(r.usedBytes)}, unused ${formatBytes(r.unusedBytes)}`);
  if (r.reconciled.copied + r.reconciled.removed > 0) printSummary(`replicas brought in line: ${r.reconciled.copied} objects copied, ${r.reconciled.removed} removed`);
  if (r.adopted > 0) printSummary(`${r.adopted} packs left by interrupted runs were added to the index`);
  if (r.repacked.packs > 0) printSummary(`${would}repack ${r.repacked.packs} packs (${formatBytes(r.repacked.bytes)}), keeping ${r.repacked.blobs} blobs${r.dryRun ? '' : ` in ${r.repacked.newPacks} new packs (${formatBytes(r.repacked.newBytes)})`}`);
  if (r.deleted.packs === 0) printSummary(r.dryRun ? 'nothing would be deleted' : 'nothing was deleted');
  else printSummary(`${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted.packs} packs (${formatBytes(r.deleted.bytes)}): ${r.dryRun ? 'frees about' : 'freed'} ${formatBytes(r.freedBytes)}`);
  if (r.rescued.packs > 0) printSummary(`kept ${r.rescued.packs} packs marked for deletion earlier, because snapshots written since need them`);
  if (r.waiting.packs > 0) {
    printSummary(`${formatBytes(r.waiting.bytes)} in ${r.waiting.packs} packs ${r.dryRun ? 'wait' : 'are marked for deletion and wait'} for other writers of this repository:`);
    for (const w of r.waiting.writers) printSummary(`  ${w.command} on ${w.host} (pid ${w.pid}, started ${localTime(w.started)}) via ${w.location}; its marker expires ${localTime(w.expires)} if it stops`);
    printSummary('  the next prune after they finish frees it');
  }
  if (r.cleanedUp.objects > 0) printSummary(`removed ${r.cleanedUp.objects} files and uploads left by interrupted runs (${formatBytes(r.cleanedUp.bytes)})`);
  printSummary(`unused space left: ${formatBytes(r.unusedAfter)}`);
  for (const d of r.damaged) printWarning(`pack ${d} is damaged and was left as it is; run coffer check --read-data`);
  for (const u of r.unavailable) printWarning(`replica ${u} was not reachable and was not pruned; the next prune (or sync) with it reachable brings it in line`);
  if (r.dryRun) printSummary('dry run: nothing was changed');
}

function exitCodeOf(r: PruneResult): void {
  if (r.unavailable.length > 0) process.exitCode = EXIT_PARTIAL;
}

/** --max-unused and --max-repack-size, checked (`forget --prune` checks them before it forgets anything). */
export function pruneLimits(options: PruneCliOptions): { maxUnused: UnusedLimit; maxRepackBytes?: number } {
  const maxUnused = options.maxUnused === undefined ? DEFAULT_MAX_UNUSED : parseUnusedLimit(options.maxUnused);
  if (options.maxRepackSize === undefined) return { maxUnused };
  const maxRepackBytes = parseSize(options.maxRepackSize);
  if (maxRepackBytes === undefined) throw new UsageError(`--max-repack-size takes a size such as 10G, not "${options.maxRepackSize}"`);
  return { maxUnused, maxRepackBytes };
}

/** Runs prune with live progress; shared by `prune` and `forget --prune`. */
export async function runPrune(repo: Repository, options: PruneCliOptions & { json?: boolean }, ignoreSnapshots?: ReadonlySet<string>): Promise<void> {
  const { maxUnused, maxRepackBytes } = pruneLimits(options);
  const interrupt = interruptSignal();
  const status = new StatusLine();
  const show = (p: PruneProgress): void => (options.json ? printJson({ type: 'status', ...p }) : status.update(statusText(p)));
  const run = new PruneRun(repo, {
    onStage: show,
    maxUnused,
    ...(maxRepackBytes !== undefined ? { maxRepackBytes } : {}),
    dryRun: options.dryRun ?? false,
    ...(ignoreSnapshots ? { ignoreSnapshots } : {}),
    signal: interrupt.signal,
    onWarning: (m) => {
      status.clear();
      if (options.json) printJson({ type: 'warning', message: m });
      else printWarning(m);
    },
  });
  const stop = every(options.json ? 1000 : 250, () => show(run.progress()));
  try {
    const result = await run.run();
    status.clear();
    report(result, options.json ?? false);
    exitCodeOf(result);
  } catch (err) {
    if (interrupt.signal.aborted) {
      status.clear();
      process.stderr.write('interrupted: nothing is lost; the next prune finishes the work\n');
      process.exitCode = EXIT_INTERRUPTED;
      return;
    }
    throw err;
  } finally {
    stop();
    status.clear();
    interrupt.dispose();
  }
}

export function pruneCommand(): Command {
  return addPruneOptions(addRepoOptions(new Command('prune').description('free the space that no snapshot needs (runs beside backups)')))
    .option('-n, --dry-run', 'show what would be deleted and repacked, change nothing')
    .action(async (options: RepoOptions & PruneCliOptions) => {
      await withRepository(options, false, (repo) => runPrune(repo, options));
    });
}
