import { Command, Option } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { BackupRun, checkSources, type BackupResult } from '../../engine/backup/backup.ts';
import type { Selection } from '../../engine/backup/selection.ts';
import { InterruptedError } from '../../engine/interrupted.ts';
import { parsePriorityRule, type PriorityRule } from '../../engine/backup/priority.ts';
import type { BackupProgress } from '../../engine/backup/progress.ts';
import { checkSpoolDirectory, DEFAULT_SPOOL_LIMITS } from '../../engine/spool.ts';
import { streamSnapshotPath, type StreamSource } from '../../engine/backup/stream-source.ts';
import { resolveDataDir } from '../../jobs/index.ts';
import type { Repository } from '../../repo/repository.ts';
import { DryRunStore } from '../../store/dry-run.ts';
import { destinationLines } from '../destination-lines.ts';
import { usesEnvironment } from '../environment-help.ts';
import { EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_PARTIAL, UsageError } from '../exit-codes.ts';
import { count, formatBytes, formatDuration, parseSize } from '../format.ts';
import { interruptSignal } from '../interrupt.ts';
import { adHocPlanName, retryPolicyOf, TrackedJob } from '../../daemon/job-tracking.ts';
import { every, printJson, printLine, printNotice, printSummary, printWarning, StatusLine } from '../output.ts';
import { readPassphrase, type PlanPassphrase } from '../passphrase.ts';
import type { LocalScaledBackup } from '../../scale-out/local-run.ts';
import { shardStatusLines } from '../shard-status.ts';
import { addRepoOptions, collect, openConfiguredStore, reportDamage, repositorySettings, type RepoOptions } from '../repo-options.ts';
import type { StoreSettings } from '../../store/configured-store.ts';
import { addSelectionOptions, pathsFromFiles, planPaths, selectionOf, type SelectionOptions } from '../selection-options.ts';
import { collectTags } from '../tags.ts';
import { limitHeapsForBackup } from '../../node-flags.ts';
import { unlockRepository } from '../unlock.ts';

interface BackupOptions extends RepoOptions, SelectionOptions {
  readonly dataDir?: string;
  readonly force?: boolean;
  readonly reset?: boolean;
  readonly maxRetries?: string;
  readonly priority: string[];
  readonly spoolDir?: string;
  readonly spoolSize: string;
  readonly oneFileSystem?: boolean;
  readonly forceReread?: boolean;
  readonly verbose?: boolean;
  readonly quiet?: boolean;
  readonly tag: string[];
  readonly host?: string;
  readonly dryRun?: boolean;
  readonly stdin?: boolean;
  readonly stdinFilename?: string;
}

/** What to back up and where: a plan from the configuration file, with the command line on top. */
interface Settings {
  readonly planName: string;
  readonly repos: string[];
  readonly paths: string[];
  readonly selection: Selection;
  readonly tags: string[];
  readonly host: string;
  readonly oneFileSystem: boolean;
  readonly priorities: PriorityRule[];
  readonly limits: StoreSettings;
  readonly renewCredentials: () => Promise<StoreSettings>;
  /** The plan's passphrase source (the command line's comes first). */
  readonly passphrase: PlanPassphrase;
  /** How long this run may stay silent before others take it for dead (the plan's staleAfter). */
  readonly staleAfterMs?: number;
  /** Files streamed into the snapshot: standard input, the plan's database dumps and commands. */
  readonly streams: StreamSource[];
  readonly spoolDisk: number;
  /** Worker processes of a scaled-out backup (the plan's `workers`); 1: an ordinary backup. */
  readonly workers: number;
  readonly allowPartial: boolean;
}

/** The first line of the live status: reading and packing, then, once everything is read, the uploads. */
export function statusText(p: BackupProgress): string {
  const elapsed = `[${formatDuration(p.elapsedMs / 1000)}]`;
  if (p.stage === 'uploading' || p.stage === 'committing') {
    const live = p.destinations.filter((d) => d.state !== 'detached' && d.state !== 'done');
    const left = Math.max(0, ...live.map((d) => d.bytesQueued));
    const etas = live.map((d) => d.etaSeconds).filter((e) => e !== undefined);
    const eta = etas.length === live.length && etas.length > 0 ? ` ETA ${formatDuration(Math.max(...etas))}` : '';
    const waiting = live.length === 0 ? '' : `; ${formatBytes(left)} left to upload${eta}`;
    return `${elapsed} read ${count(p.filesDone, 'file')}, ${formatBytes(p.bytesDone)}${waiting} ${p.stage}`;
  }
  const percent = p.bytesTotal > 0 ? ` ${((100 * p.bytesDone) / p.bytesTotal).toFixed(1)}%` : '';
  const eta = p.etaSeconds !== undefined ? ` ETA ${formatDuration(p.etaSeconds)}` : '';
  // "~": the parent snapshot's totals, an estimate; "+": totals still growing (being counted, or past the estimate).
  const about = p.totalsEstimated ? '~' : '';
  const total = p.totalsKnown ? '' : '+';
  return (
    `${elapsed}${percent} ${p.filesDone}/${about}${p.filesTotal}${total} files ` +
    `${formatBytes(p.bytesDone)}/${about}${formatBytes(p.bytesTotal)}${total} ${formatBytes(p.bytesPerSecond)}/s${eta} ${p.stage} ${p.currentFile}`
  );
}

function priorityRule(text: string): PriorityRule {
  const rule = parsePriorityRule(text);
  if (!rule) throw new UsageError(`--priority takes PATH=LEVEL with an integer level (e.g. ~/documents=10), not "${text}"`);
  return rule;
}

async function resolveSettings(paths: string[], options: BackupOptions): Promise<Settings> {
  const repository = await repositorySettings(options);
  const plan = repository.plan;
  // Paths on the command line (as arguments or --files-from) replace the plan's.
  const given = [...paths, ...pathsFromFiles(options.filesFrom)];
  const sources = (given.length > 0 ? given : plan ? planPaths(plan) : []).map((p) => path.resolve(p));
  // The configuration's schemas (zod, YAML), the dump sources and scale-out are loaded only when a run
  // needs them: what a plain backup imports stays in memory under the key derivation's 64 MiB.
  const planSources = plan?.sources ? (await import('../../daemon/sources.ts')).streamSources(plan.sources) : [];
  const streams = [...planSources, ...(options.stdin || options.stdinFilename ? [await stdinStream(options)] : [])];
  if (sources.length === 0 && streams.length === 0) throw new UsageError('nothing to back up: give paths, --files-from, --stdin or --plan');
  const workers = plan?.workers ?? 1;
  if (workers > 1 && options.dryRun) throw new UsageError(`plan ${options.plan} has workers: ${workers}; --dry-run works on ordinary backups only`);
  if (workers > 1 && streams.length > 0) throw new UsageError(`plan ${options.plan} has workers: ${workers}, which backs up paths only; back its sources (dumps, commands, --stdin) up with another plan`);
  const spoolDisk = parseSize(options.spoolSize);
  if (spoolDisk === undefined) throw new UsageError(`--spool-size takes a size such as 512M or 4G, not "${options.spoolSize}"`);
  // Before a job is recorded: a wrong directory is the user's to fix, not a failure to retry.
  if (options.spoolDir) checkSpoolDirectory(options.spoolDir);
  const host = options.host ?? plan?.host ?? os.hostname();
  return {
    planName: options.plan ?? adHocPlanName(host, repository.locations, [...sources, ...streams.map((s) => streamSnapshotPath(s.name))]),
    repos: repository.locations,
    paths: sources,
    selection: selectionOf(options, plan),
    tags: [...(plan?.tags ?? []), ...options.tag],
    host,
    oneFileSystem: options.oneFileSystem ?? plan?.oneFileSystem ?? false,
    priorities: [...(plan?.priority ?? []), ...options.priority].map(priorityRule),
    limits: repository.limits,
    renewCredentials: repository.renewCredentials,
    passphrase: repository.passphrase,
    ...(plan?.staleAfter ? { staleAfterMs: (await import('../../config/automation.ts')).durationMs(plan.staleAfter) } : {}),
    streams,
    spoolDisk,
    workers,
    allowPartial: plan?.allowPartial ?? false,
  };
}

/** `--stdin`: standard input as one file of the snapshot, read as it comes (a pipe of any size). */
async function stdinStream(options: BackupOptions): Promise<StreamSource> {
  if (!options.stdin) throw new UsageError('--stdin-filename names what --stdin reads; add --stdin');
  const name = options.stdinFilename ?? 'stdin';
  const { streamFileName } = await import('../../config/automation.ts');
  const valid = streamFileName.safeParse(name);
  if (!valid.success) throw new UsageError(`--stdin-filename takes ${valid.error.issues[0]!.message}, not "${name}"`);
  if (process.stdin.isTTY) throw new UsageError(`--stdin reads standard input, which is a terminal here; pipe the data in, e.g. pg_dump app | coffer backup --stdin --stdin-filename ${name}`);
  return { name, open: () => process.stdin };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/** The stores and the repository, opened afresh for each attempt. */
async function openDestinations(settings: Settings, passphrase: string, options: BackupOptions): Promise<Repository> {
  const stores = settings.repos.map((location) => openConfiguredStore(location, settings.limits)).map((s) => (options.dryRun ? new DryRunStore(s) : s));
  const repo = await unlockRepository(stores, passphrase, options.dataDir).catch(async (err) => {
    await Promise.all(stores.map((s) => s.close()));
    throw err;
  });
  reportDamage(repo);
  return repo;
}

/** One attempt of a plan with `workers: N`: N worker processes on this machine, one snapshot; closes the repository. */
async function scaledBackupOnce(repo: Repository, settings: Settings, options: BackupOptions, signal: AbortSignal, job: TrackedJob | undefined): Promise<BackupResult> {
  const status = new StatusLine();
  const lost = new AbortController();
  let stopRender = (): void => {};
  const { LocalScaledBackup } = await import('../../scale-out/local-run.ts');
  const run: LocalScaledBackup = new LocalScaledBackup(repo, {
    locations: settings.repos,
    stores: settings.limits,
    paths: settings.paths,
    workers: settings.workers,
    allowPartial: settings.allowPartial,
    selection: settings.selection,
    oneFileSystem: settings.oneFileSystem,
    tags: settings.tags,
    host: settings.host,
    signal: AbortSignal.any([signal, lost.signal]),
    onQueued: (plan, workers) => {
      if (options.json || options.quiet) return;
      printLine(`${count(plan.shards.length, 'shard')} queued for ${count(workers, 'worker process', 'worker processes')}`);
      stopRender = every(1000, () => status.update(shardStatusLines(run.status()!)));
    },
  });
  const stopTracking = job?.follow(run, (err) => {
    printWarning(err.message);
    lost.abort();
  });
  try {
    const result = await run.run();
    stopRender();
    status.clear();
    // The workers' warnings arrive with their shards' results, after the run.
    for (const w of result.warnings) {
      job?.warn(`${w.path}: ${w.message}`);
      printWarning(w.message, { path: w.path });
    }
    job?.finished(result.destinations, result.snapshotId);
    return result;
  } finally {
    stopRender();
    stopTracking?.();
    status.clear();
    await repo.close();
  }
}

/** One attempt with live progress; closes the repository. */
async function backupOnce(repo: Repository, settings: Settings, options: BackupOptions, signal: AbortSignal, job: TrackedJob | undefined): Promise<BackupResult> {
  const status = new StatusLine();
  const lost = new AbortController();
  try {
    const run = new BackupRun(repo, {
      paths: settings.paths,
      selection: settings.selection,
      forceReread: options.forceReread ?? false,
      oneFileSystem: settings.oneFileSystem,
      tags: settings.tags,
      host: settings.host,
      priorities: settings.priorities,
      spool: { ...DEFAULT_SPOOL_LIMITS, disk: settings.spoolDisk },
      ...(options.spoolDir ? { spoolDir: options.spoolDir } : {}),
      signal: AbortSignal.any([signal, lost.signal]),
      streams: settings.streams,
    });
    job?.log.info('backing up', { paths: settings.paths, repos: settings.repos, selection: settings.selection, tags: settings.tags });
    run.onCommitted = (location) => {
      job?.committed(location);
      if (options.json) printJson({ type: 'committed', location });
    };
    run.onWarning = (w) => {
      job?.warn(`${w.path}: ${w.message}`);
      status.clear();
      printWarning(w.message, { path: w.path });
    };
    if (options.verbose) {
      run.onFile = (path, state) => {
        if (options.json) printJson({ type: 'file', path, state });
        else {
          status.clear();
          printLine(`${state.padEnd(10)} ${path}`);
        }
      };
    }
    const stopRender = options.quiet
      ? () => {}
      : options.json
      ? every(1000, () => printJson({ type: 'status', ...run.progress() }))
      : every(250, () => {
          const p = run.progress();
          status.update([statusText(p), ...destinationLines(p.destinations)]);
        });
    const stopTracking = job?.follow(run, (err) => {
      printWarning(err.message);
      lost.abort();
    });
    try {
      const result = await run.run();
      job?.finished(result.destinations, result.snapshotId);
      return result;
    } finally {
      stopRender();
      stopTracking?.();
      status.clear();
    }
  } finally {
    await repo.close();
  }
}

/**
 * The summary, and the exit code: 3 when files could not be read, else 4 when a destination missed the
 * snapshot (docs/JSON.md: a missed destination catches up by itself, unreadable files need a person).
 * Both are stated when both apply.
 */
function report(result: BackupResult, options: BackupOptions): void {
  const s = result.snapshot.summary;
  const missed = result.destinations.filter((d) => !d.committed).map((d) => d.location);
  const exitCode = s.warnings > 0 ? EXIT_INCOMPLETE : missed.length > 0 ? EXIT_PARTIAL : 0;
  const empty = s.totalFiles === 0 && result.excluded > 0;
  if (empty) printWarning('every file matched an exclude pattern: the snapshot holds no files (a re-include is written !PATTERN after the pattern it undoes)');
  if (options.json) {
    printJson({
      type: 'summary',
      snapshotId: result.snapshotId,
      dryRun: options.dryRun ?? false,
      adoptedPacks: result.adoptedPacks,
      destinations: result.destinations,
      ...s,
      durationMs: result.durationMs,
      excluded: result.excluded,
      incomplete: s.warnings > 0,
      missedDestinations: missed,
      exitCode,
    });
  } else {
    // -q leaves out the summary: only what went wrong (the warnings below, on stderr).
    printSummary(`${options.dryRun ? 'would save snapshot' : 'snapshot'} ${result.snapshotId.slice(0, 8)}${options.dryRun ? '' : ' saved'}`);
    printSummary(`files: ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified; ${count(s.dirs, 'directory', 'directories')}`);
    printSummary(`added to the repository: ${formatBytes(s.bytesAdded)} (${count(s.dataBlobs, 'data blob')}, ${count(s.treeBlobs, 'tree')})`);
    printSummary(`processed ${count(s.totalFiles, 'file')}, ${formatBytes(s.totalBytes)} in ${formatDuration(result.durationMs / 1000)}`);
    if (result.adoptedPacks > 0) printSummary(`reused ${count(result.adoptedPacks, 'pack')} left by an interrupted backup`);
    if (result.destinations.length > 1) for (const d of result.destinations) printSummary(`  ${d.location}: ${d.committed ? 'committed' : `not committed (${d.error})`}`);
    if (s.warnings > 0) printWarning(`${count(s.warnings, 'file')} could not be backed up completely (listed above); the snapshot is incomplete (exit code 3)`);
    if (missed.length > 0) {
      const code = s.warnings > 0 ? 'exit code 4, but 3 takes precedence' : 'exit code 4';
      printWarning(`${count(missed.length, 'destination')} did not get the snapshot; bring ${missed.length === 1 ? 'it' : 'them'} up to date with coffer sync or the next backup (${code})`);
    }
  }
  if (exitCode !== 0) process.exitCode = exitCode;
}

export function backupCommand(): Command {
  const command = addSelectionOptions(addRepoOptions(new Command('backup').description('back up files and directories into a new snapshot (--plan: a plan from the configuration file, see coffer setup)'), { upload: true }))
    .argument('[paths...]', 'files and directories to back up (default: those of --plan)')
    .option('--data-dir <dir>', 'where the job database and run logs live (default $COFFER_DATA_DIR or ~/.local/share/coffer)')
    .option('--force', 'take over a run of the same plan that is stale (its process is gone or silent)')
    .option('--reset', "clear this plan's job state first (never repository data)")
    .option('--max-retries <n>', 'retries after a failure (default from the configuration, 3)')
    .option('-x, --one-file-system', 'do not cross file-system boundaries')
    .option('--force-reread', 'read every file again, even those unchanged since the parent snapshot')
    .option('-v, --verbose', 'list every file as it is backed up (with -n: every file that would be)')
    .addOption(new Option('--tag <tag[,tag…]>', 'tag the snapshot (repeatable)').argParser(collectTags).default([]))
    .option('--host <name>', 'host name recorded in the snapshot (default: this machine)')
    .option('-n, --dry-run', 'read and pack everything but write nothing (and record no job)')
    .addOption(new Option('--priority <path=level>', 'back up and upload PATH before lower levels (integer, default 0; repeatable)').argParser(collect).default([]))
    .option('--spool-dir <dir>', 'where packs wait on disk for slow destinations (default: the temporary directory)')
    .option('--spool-size <size>', 'how far (bytes, e.g. 4G) a destination may fall behind before it is detached', '4G')
    .option('--stdin', 'back up standard input as a file (a dump piped in), read as it comes')
    .option('--stdin-filename <name>', 'the name of that file in the snapshot (default: stdin)');
  return usesEnvironment(command, ['COFFER_DATA_DIR']).action(async (paths: string[], options: BackupOptions) => {
      limitHeapsForBackup();
      let settings = await resolveSettings(paths, options);
      // Standard input can be read only once: a failed attempt cannot be retried.
      const maxRetries = options.stdin ? 0 : options.maxRetries === undefined ? undefined : Number(options.maxRetries);
      if (maxRetries !== undefined && !(Number.isInteger(maxRetries) && maxRetries >= 0)) throw new UsageError(`--max-retries takes a whole number, not "${options.maxRetries}"`);
      const passphrase = await readPassphrase(options, settings.passphrase);
      // A run without --plan is a one-off: a mistyped source or repository, or a wrong passphrase, is
      // reported at once and leaves no failed job behind that nothing would ever clear from `status`.
      let opened: Repository | undefined;
      if (!options.plan) {
        checkSources(settings.paths);
        opened = await openDestinations(settings, passphrase, options);
      }
      let job: TrackedJob | undefined;
      try {
        if (!options.dryRun) {
          const { loadConfig, resolveConfigFile } = await import('../../config/config-file.ts');
          job = new TrackedJob(resolveDataDir(options.dataDir), settings.planName, settings.repos, retryPolicyOf(loadConfig(resolveConfigFile(options.config)).retries, maxRetries));
        }
      } catch (err) {
        await opened?.close();
        throw err;
      }
      const interrupt = interruptSignal();
      try {
        if (options.reset && job) printLine(`cleared ${count(job.reset(), 'job')} of plan ${settings.planName}`);
        let renewCredentials = false;
        for (;;) {
          const resumed = job?.acquire(options.force ?? false, settings.staleAfterMs).resumed;
          if (resumed && !options.json && !options.quiet) printLine(`resuming job ${job!.run.jobId} of plan ${settings.planName}`);
          try {
            if (renewCredentials) settings = { ...settings, limits: await settings.renewCredentials() };
            const repo = opened ?? (await openDestinations(settings, passphrase, options));
            opened = undefined;
            const once = settings.workers > 1 ? scaledBackupOnce(repo, settings, options, interrupt.signal, job) : backupOnce(repo, settings, options, interrupt.signal, job);
            report(await once, options);
            return;
          } catch (err) {
            if (err instanceof InterruptedError || interrupt.signal.aborted) {
              job?.interrupted('stopped by Ctrl-C or SIGTERM; the next backup of this plan resumes it');
              printNotice('interrupted: what was already stored is kept and the next backup reuses it');
              process.exitCode = EXIT_INTERRUPTED;
              return;
            }
            // Loaded only once an attempt failed: cli/errors.ts imports prune, the daemon's control, hooks and
            // sources for its instanceof checks, which a backup that succeeds never needs, and whose modules
            // stay in memory under the key derivation's 64 MiB (bench/PROFILE.md, 2026-12-02).
            const { describeError, isRetryable } = await import('../errors.ts');
            const retry = job?.failed(err as Error, isRetryable(err)).retry;
            if (!retry) throw err;
            printWarning(`attempt ${retry.attempt} failed: ${describeError(err)}; retrying in ${formatDuration(retry.delayMs / 1000)} (Ctrl-C to stop)`);
            await sleep(retry.delayMs, interrupt.signal);
            if (interrupt.signal.aborted) {
              job!.stoppedWaiting('stopped while waiting to retry');
              printNotice(`interrupted: job ${job!.run.jobId} is kept as interrupted; the next backup of this plan resumes it`);
              process.exitCode = EXIT_INTERRUPTED;
              return;
            }
            renewCredentials = true;
          }
        }
      } finally {
        await opened?.close();
        interrupt.dispose();
        job?.close();
      }
    });
}
