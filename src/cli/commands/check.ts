import { Command, Option } from 'commander';
import { runCheck, type ReadDataMode } from '../../engine/check.ts';
import { EXIT_FATAL, UsageError } from '../errors.ts';
import { printJson, printLine, printWarning, StatusLine } from '../output.ts';
import { addRepoOptions, openRepository, type RepoOptions } from '../repo-options.ts';

interface CheckOptions extends RepoOptions {
  readonly readData?: boolean;
  readonly readDataSubset?: string;
}

function readDataMode(options: CheckOptions): ReadDataMode {
  if (options.readData && options.readDataSubset) throw new UsageError('use either --read-data or --read-data-subset, not both');
  if (options.readData) return { kind: 'all' };
  if (options.readDataSubset === undefined) return { kind: 'none' };
  const m = /^(\d+(?:\.\d+)?)%$/.exec(options.readDataSubset);
  const percent = m ? Number(m[1]) : NaN;
  if (!(percent > 0 && percent <= 100)) throw new UsageError(`--read-data-subset takes a percentage such as 10%, not "${options.readDataSubset}"`);
  return { kind: 'subset', percent };
}

export function checkCommand(): Command {
  return addRepoOptions(new Command('check').description('check the repository: structure, and with --read-data the data itself'))
    .option('--read-data', 'read, decrypt and verify every pack')
    .addOption(new Option('--read-data-subset <percent>', 'read a random N% of the packs (e.g. 10%)'))
    .action(async (options: CheckOptions) => {
      const mode = readDataMode(options);
      const repo = await openRepository(options, { loadIndex: false });
      const status = new StatusLine();
      try {
        const result = await runCheck(repo, { readData: mode, onProgress: (m) => status.update(m) });
        status.clear();
        if (options.json) {
          printJson({ type: 'summary', ...result, ok: result.errors.length === 0 });
        } else {
          for (const note of result.notes) printWarning(note);
          for (const error of result.errors) printLine(`error: ${error}`);
          printLine(
            `checked ${result.snapshots} snapshots, ${result.trees} trees, ${result.packs} packs` +
              (mode.kind === 'none' ? '' : `; read ${result.packsRead} packs and verified ${result.blobsVerified} blobs`),
          );
          printLine(result.errors.length === 0 ? 'no errors were found' : `${result.errors.length} errors found`);
        }
        if (result.errors.length > 0) process.exitCode = EXIT_FATAL;
      } finally {
        status.clear();
        await repo.close();
      }
    });
}
