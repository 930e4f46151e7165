import { Command, Option } from 'commander';
import os from 'node:os';
import { BackupRun, InterruptedError } from '../../engine/backup/backup.ts';
import { readExcludeFile } from '../../engine/backup/exclude.ts';
import type { BackupProgress } from '../../engine/backup/progress.ts';
import { DryRunStore } from '../../store/dry-run.ts';
import { Repository } from '../../repo/repository.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { interruptSignal } from '../interrupt.ts';
import { every, printJson, printLine, printWarning, StatusLine } from '../output.ts';
import { readPassphrase } from '../passphrase.ts';
import { addRepoOptions, collect, openStores, reportDamage, type RepoOptions } from '../repo-options.ts';
import { destinationLines } from '../destination-lines.ts';
import { parsePriorityRule } from '../../engine/backup/priority.ts';
import { DEFAULT_SPOOL_LIMITS } from '../../engine/spool.ts';
import { EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_PARTIAL, UsageError } from '../errors.ts';
import { parseSize } from '../format.ts';

interface BackupOptions extends RepoOptions {
  readonly priority: string[];
  readonly spoolDir?: string;
  readonly spoolSize?: string;
  readonly exclude: string[];
  readonly excludeFile: string[];
  readonly oneFileSystem?: boolean;
  readonly tag: string[];
  readonly host?: string;
  readonly dryRun?: boolean;
}

export function statusText(p: BackupProgress): string {
  const percent = p.bytesTotal > 0 ? ` ${((100 * p.bytesDone) / p.bytesTotal).toFixed(1)}%` : '';
  const eta = p.etaSeconds !== undefined ? ` ETA ${formatDuration(p.etaSeconds)}` : '';
  const total = p.totalsKnown ? '' : '+';
  return (
    `[${formatDuration(p.elapsedMs / 1000)}]${percent} ${p.filesDone}/${p.filesTotal}${total} files ` +
    `${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}${total} ${formatBytes(p.bytesPerSecond)}/s${eta} ${p.stage} ${p.currentFile}`
  );
}

function badPriority(text: string): never {
  throw new UsageError(`--priority takes PATH=LEVEL with an integer level (e.g. ~/documents=10), not "${text}"`);
}

export function backupCommand(): Command {
  return addRepoOptions(new Command('backup').description('back up files and directories into a new snapshot'))
    .argument('<paths...>', 'files and directories to back up')
    .addOption(new Option('-e, --exclude <pattern>', 'skip matching files and directories (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)').argParser(collect).default([]))
    .option('-x, --one-file-system', 'do not cross file-system boundaries')
    .addOption(new Option('--tag <tag>', 'tag the snapshot (repeatable)').argParser(collect).default([]))
    .option('--host <name>', 'host name recorded in the snapshot (default: this machine)')
    .option('-n, --dry-run', 'read and pack everything but write nothing')
    .addOption(new Option('--priority <path=level>', 'back up and upload PATH before lower levels (integer, default 0; repeatable)').argParser(collect).default([]))
    .option('--spool-dir <dir>', 'where packs wait on disk for slow destinations (default: the temporary directory)')
    .option('--spool-size <size>', 'how far (bytes, e.g. 4G) a destination may fall behind before it is detached', '4G')
    .action(async (paths: string[], options: BackupOptions) => {
      const priorities = options.priority.map((text) => parsePriorityRule(text) ?? badPriority(text));
      const spoolDisk = parseSize(options.spoolSize ?? '4G');
      if (spoolDisk === undefined) throw new UsageError(`--spool-size takes a size such as 512M or 4G, not "${options.spoolSize}"`);
      const excludes = [...options.exclude, ...options.excludeFile.flatMap((f) => readExcludeFile(f))];
      const stores = openStores(options).map((s) => (options.dryRun ? new DryRunStore(s) : s));
      const repo = await Repository.open(stores, await readPassphrase(options)).catch(async (err) => {
        await Promise.all(stores.map((s) => s.close()));
        throw err;
      });
      reportDamage(repo);
      const interrupt = interruptSignal();
      const status = new StatusLine();
      try {
        await repo.loadIndex();
        const run = new BackupRun(repo, {
          paths,
          excludes,
          oneFileSystem: options.oneFileSystem ?? false,
          tags: options.tag,
          host: options.host ?? os.hostname(),
          priorities,
          spool: { ...DEFAULT_SPOOL_LIMITS, disk: spoolDisk },
          ...(options.spoolDir ? { spoolDir: options.spoolDir } : {}),
          signal: interrupt.signal,
        });
        run.onCommitted = (location) => {
          if (options.json) printJson({ type: 'committed', location });
        };
        run.onWarning = (w) => {
          status.clear();
          if (options.json) printJson({ type: 'warning', ...w });
          else printWarning(`${w.path}: ${w.message}`);
        };
        const stop = options.json
          ? every(1000, () => printJson({ type: 'status', ...run.progress() }))
          : every(250, () => {
              const p = run.progress();
              status.update([statusText(p), ...(p.destinations.length > 1 ? destinationLines(p.destinations) : [])]);
            });
        let result;
        try {
          result = await run.run();
        } finally {
          stop();
          status.clear();
        }
        const s = result.snapshot.summary;
        const missed = result.destinations.filter((d) => !d.committed);
        if (options.json) {
          printJson({ type: 'summary', snapshotId: result.snapshotId, dryRun: options.dryRun ?? false, adoptedPacks: result.adoptedPacks, destinations: result.destinations, ...s });
        } else {
          printLine(`${options.dryRun ? 'would save snapshot' : 'snapshot'} ${result.snapshotId.slice(0, 8)}${options.dryRun ? '' : ' saved'}`);
          printLine(`files: ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified; ${s.dirs} directories`);
          printLine(`added to the repository: ${formatBytes(s.bytesAdded)} (${s.dataBlobs} data blobs, ${s.treeBlobs} trees)`);
          printLine(`processed ${s.totalFiles} files, ${formatBytes(s.totalBytes)} in ${formatDuration(s.durationMs / 1000)}`);
          if (result.adoptedPacks > 0) printLine(`reused ${result.adoptedPacks} packs left by an interrupted backup`);
          if (result.destinations.length > 1) for (const d of result.destinations) printLine(`  ${d.location}: ${d.committed ? 'committed' : `not committed (${d.error})`}`);
          if (s.warnings > 0) printWarning(`${s.warnings} files could not be backed up completely (listed above); the snapshot is incomplete`);
          if (missed.length > 0) printWarning(`${missed.length} destinations did not get the snapshot; bring them up to date with coffer sync or the next backup`);
        }
        if (s.warnings > 0) process.exitCode = EXIT_INCOMPLETE;
        if (missed.length > 0) process.exitCode = EXIT_PARTIAL;
      } catch (err) {
        if (err instanceof InterruptedError) {
          process.stderr.write('interrupted: what was already stored is kept and the next backup reuses it\n');
          process.exitCode = EXIT_INTERRUPTED;
          return;
        }
        throw err;
      } finally {
        interrupt.dispose();
        await repo.close();
      }
    });
}
