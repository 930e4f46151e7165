import { Command, Option } from 'commander';
import { InterruptedError } from '../../engine/interrupted.ts';
import { RestoreRun, type RestoreProgress } from '../../engine/restore/restore.ts';
import { EXIT_FATAL, EXIT_INTERRUPTED } from '../exit-codes.ts';
import { count, formatBytes, formatDuration } from '../format.ts';
import { interruptSignal } from '../interrupt.ts';
import { every, printJson, printNotice, printSummary, printWarning, StatusLine } from '../output.ts';
import { addRepoOptions, collect, openRepository, startReader, type RepoOptions } from '../repo-options.ts';
import { openSnapshot, splitSnapshotPath } from '../snapshot-arg.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

interface RestoreOptions extends RepoOptions, FilterOptions {
  readonly target: string;
  readonly include: string[];
  readonly exclude: string[];
  readonly verify?: boolean;
}


function statusText(p: RestoreProgress): string {
  const percent = p.bytesTotal > 0 ? ` ${((100 * p.bytesDone) / p.bytesTotal).toFixed(1)}%` : '';
  const eta = p.etaSeconds !== undefined ? ` ETA ${formatDuration(p.etaSeconds)}` : '';
  return `[${formatDuration(p.elapsedMs / 1000)}]${percent} ${count(p.filesDone, 'file')} ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} ${formatBytes(p.bytesPerSecond)}/s${eta} ${p.currentFile}`;
}

export function restoreCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('restore').description('restore a snapshot (or SNAP:/sub/path) into a directory')))
    .argument('<snapshot>', 'snapshot id, unique prefix, or latest; SNAP:/path restores only that path')
    .requiredOption('-t, --target <dir>', 'directory to restore into (created if missing)')
    .addOption(new Option('-i, --include <pattern>', 'restore only matching paths (repeatable)').argParser(collect).default([]))
    .addOption(new Option('-e, --exclude <pattern>', 'do not restore matching paths (repeatable)').argParser(collect).default([]))
    .option('--verify', 'read every restored file back and compare it with the snapshot')
    .action(async (arg: string, options: RestoreOptions) => {
      const { ref, subpath } = splitSnapshotPath(arg);
      const repo = await openRepository(options, { loadIndex: false });
      const reader = await startReader(repo, 'restore').catch(async (err: unknown) => {
        await repo.close();
        throw err;
      });
      const interrupt = interruptSignal();
      const status = new StatusLine();
      let interrupted = false;
      try {
        await repo.loadIndex();
        const { stored: snap, view } = await openSnapshot(repo, ref, filterOf(options));
        const from = await view.find(subpath);
        const run = new RestoreRun(repo, { target: options.target, includes: options.include, excludes: options.exclude, signal: interrupt.signal, verify: options.verify ?? false });
        const stop = options.json ? every(1000, () => printJson({ type: 'status', ...run.progress() })) : every(250, () => status.update(statusText(run.progress())));
        let result;
        try {
          result = await run.run(view, from);
        } catch (err) {
          if (!(err instanceof InterruptedError)) throw err;
        } finally {
          stop();
          status.clear();
        }
        if (!result) {
          printNotice(`interrupted: ${count(run.progress().filesDone, 'file')} restored completely; nothing half written is left`);
          interrupted = true;
          return;
        }
        for (const e of result.errors) printWarning(e.message, { path: e.path });
        const durationMs = run.progress().elapsedMs;
        if (options.json) printJson({ type: 'summary', snapshotId: snap.id, files: result.files, dirs: result.dirs, bytes: result.bytes, ...(options.verify ? { verified: result.verified } : {}), errors: result.errors.length, durationMs });
        else {
          printSummary(`restored ${count(result.files, 'file')}, ${count(result.dirs, 'directory', 'directories')}, ${formatBytes(result.bytes)} from ${snap.id.slice(0, 8)} to ${options.target} in ${formatDuration(durationMs / 1000)}`);
          const mismatched = result.errors.filter((e) => e.message.startsWith('verification failed')).length;
          if (options.verify) printSummary(`verified ${count(result.verified, 'file')}${mismatched === 0 ? ': all equal to the snapshot' : `; ${mismatched} differ (listed above)`}`);
        }
        if (result.errors.length > 0) {
          if (!options.json) printWarning(`${count(result.errors.length, 'path')} could not be restored (listed above)`);
          process.exitCode = EXIT_FATAL;
        }
      } finally {
        interrupt.dispose();
        await reader.end();
        await repo.close();
        // Reads already under way (a slow link) would keep the process alive until they end.
        if (interrupted) process.exit(EXIT_INTERRUPTED);
      }
    });
}
