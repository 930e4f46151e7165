import { Command, Option } from 'commander';
import { copySnapshots } from '../../engine/copy.ts';
import { readConfig, Repository } from '../../repo/repository.ts';
import { matchesFilter, resolveSnapshot } from '../../repo/snapshot-ref.ts';
import { UsageError } from '../exit-codes.ts';
import { formatBytes } from '../format.ts';
import { interruptSignal } from '../interrupt.ts';
import { printJson, printSummary, StatusLine } from '../output.ts';
import { askHidden, fromCommand, fromFile } from '../passphrase.ts';
import { addRepoOptions, collect, openConfiguredStore, reportDamage, withRepository, type RepoOptions } from '../repo-options.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

interface CopyCliOptions extends RepoOptions, FilterOptions {
  readonly fromRepo: string[];
  readonly toRepo: string[];
  readonly fromPasswordFile?: string;
  readonly fromPasswordCommand?: string;
}

/** The source repository's passphrase: its own options, else COFFER_FROM_PASSWORD, else a prompt. */
async function sourcePassphrase(options: CopyCliOptions): Promise<string> {
  if (options.fromPasswordFile) return fromFile(options.fromPasswordFile);
  if (options.fromPasswordCommand) return fromCommand(options.fromPasswordCommand);
  const env = process.env.COFFER_FROM_PASSWORD;
  if (env) return env;
  if (!process.stdin.isTTY) throw new UsageError('no passphrase for the source repository: use --from-password-file, --from-password-command or COFFER_FROM_PASSWORD');
  const [answer] = await askHidden(['passphrase of the source repository: ']);
  return answer!;
}

export function copyCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('copy').description('copy snapshots into another repository (other keys: re-chunked and re-encrypted; only what it lacks is stored)')))
    .argument('[snapshots...]', 'snapshots of the source to copy (default: all, or those matching --host/--path/--tag)')
    .addOption(new Option('--from-repo <location>', 'the source repository (repeat for its replicas)').argParser(collect).default([]))
    .addOption(new Option('--to-repo <location>', 'the target repository (repeat for its replicas; --repo works too)').argParser(collect).default([]))
    .option('--from-password-file <file>', "read the source's passphrase from a file (else $COFFER_FROM_PASSWORD, else asked)")
    .option('--from-password-command <command>', "run a command that prints the source's passphrase")
    .action(async (ids: string[], raw: CopyCliOptions) => {
      if (raw.fromRepo.length === 0) throw new UsageError('give the source with --from-repo LOCATION');
      const targets = [...raw.toRepo, ...(raw.repo ?? [])];
      if (targets.length === 0 && !process.env.COFFER_REPO) throw new UsageError('give the target with --to-repo LOCATION');
      const options = { ...raw, repo: targets };
      const overlap = raw.fromRepo.filter((l) => targets.includes(l));
      if (overlap.length > 0) throw new UsageError(`${overlap[0]} is both the source and the target`);
      const sourceStores = raw.fromRepo.map((l) => openConfiguredStore(l, options));
      let source: Repository;
      try {
        // A location that holds no repository is said before anyone is asked for a passphrase.
        await Promise.any(sourceStores.map((s) => readConfig(s))).catch((err: AggregateError) => Promise.reject(err.errors[0]));
        source = await Repository.open(sourceStores, await sourcePassphrase(raw));
      } catch (err) {
        await Promise.all(sourceStores.map((s) => s.close()));
        throw err;
      }
      reportDamage(source);
      try {
        await withRepository(options, false, async (target) => {
          const all = await source.listSnapshots();
          const chosen = ids.length > 0 ? [...new Map(ids.map((ref) => resolveSnapshot(all, ref)).map((s) => [s.id, s])).values()] : all.filter((s) => matchesFilter(s, filterOf(raw)));
          const status = new StatusLine();
          const interrupt = interruptSignal();
          try {
            const result = await copySnapshots(source, target, {
              snapshots: chosen,
              signal: interrupt.signal,
              onProgress: (p) => status.update(`snapshot ${p.snapshot}/${p.snapshots}: read ${formatBytes(p.bytesRead)}, stored ${formatBytes(p.bytesAdded)} new`),
            });
            status.clear();
            if (options.json) {
              for (const c of result.copied) printJson({ type: 'copied', ...c });
              printJson({ type: 'summary', copied: result.copied.length, skipped: result.skipped.length, blobsAdded: result.blobsAdded, bytesAdded: result.bytesAdded, bytesRead: result.bytesRead });
            } else {
              for (const c of result.copied) printSummary(`copied ${c.from.slice(0, 8)} → ${c.to.slice(0, 8)}`);
              if (result.skipped.length > 0) printSummary(`skipped ${result.skipped.length} snapshots already in the target`);
              printSummary(`${result.copied.length} snapshots copied: read ${formatBytes(result.bytesRead)}, stored ${formatBytes(result.bytesAdded)} (before compression) that the target lacked`);
            }
          } finally {
            status.clear();
            interrupt.dispose();
          }
        });
      } finally {
        await source.close();
      }
    });
}
