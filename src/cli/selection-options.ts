// The backup options that choose what is backed up: exclude patterns (exact and case-insensitive),
// marker files, cache directories, a size limit, and a list of paths from a file; merged with a plan's.
import path from 'node:path';
import { Command, Option } from 'commander';
import type { PlanConfig } from '../config/config-file.ts';
import { expandVariables } from '../config/expand.ts';
import { readExcludeFile } from '../engine/backup/exclude.ts';
import type { Selection } from '../engine/backup/selection.ts';
import { UsageError } from './exit-codes.ts';
import { parseSize } from './format.ts';
import { collect } from './repo-options.ts';

export interface SelectionOptions {
  readonly exclude: string[];
  readonly excludeFile: string[];
  readonly iexclude: string[];
  readonly excludeIfPresent: string[];
  readonly excludeCaches?: boolean;
  readonly excludeLargerThan?: string;
  readonly filesFrom: string[];
}

export function addSelectionOptions(command: Command): Command {
  return command
    .addOption(new Option('-e, --exclude <pattern>', 'skip matching files and directories (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--iexclude <pattern>', 'like --exclude, ignoring case (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)').argParser(collect).default([]))
    .option('--exclude-caches', 'skip directories holding a CACHEDIR.TAG with the standard signature')
    .addOption(new Option('--exclude-if-present <name[:header]>', 'skip directories holding a file NAME (that starts with HEADER) (repeatable)').argParser(collect).default([]))
    .option('--exclude-larger-than <size>', 'skip files bigger than SIZE (e.g. 500M, 2G)')
    .addOption(new Option('--files-from <file>', 'back up the paths listed in a file, one per line (repeatable)').argParser(collect).default([]));
}

function sizeLimit(text: string | undefined, where: string): number | undefined {
  if (text === undefined) return undefined;
  const size = parseSize(text);
  if (size === undefined) throw new UsageError(`${where} takes a size such as 500M or 2G, not "${text}"`);
  return size;
}

function readLines(file: string, what: string): string[] {
  try {
    return readExcludeFile(file);
  } catch (err) {
    throw new UsageError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** Patterns of an --exclude-file, with ~ and $VARS expanded as restic does. */
function excludeFilePatterns(file: string): string[] {
  return readLines(file, 'exclude file').map((line) => {
    try {
      return expandVariables(line);
    } catch (err) {
      throw new UsageError(`--exclude-file ${file}: ${(err as Error).message} in "${line}" (write $$ for a literal $)`);
    }
  });
}

/** The paths listed in --files-from files: one per line, blank lines and # comments skipped, relative to the current directory. */
export function pathsFromFiles(files: readonly string[]): string[] {
  return files.flatMap((file) => readLines(file, '--files-from list').map((p) => path.resolve(p)));
}

/** The paths a plan backs up: its paths and those its filesFrom lists name. */
export function planPaths(plan: PlanConfig): string[] {
  return [...plan.paths, ...pathsFromFiles(plan.filesFrom)];
}

export function selectionOf(options: SelectionOptions, plan: PlanConfig | undefined): Selection {
  const limit = sizeLimit(options.excludeLargerThan, '--exclude-larger-than') ?? sizeLimit(plan?.excludeLargerThan, 'excludeLargerThan in the plan');
  const markers = [...(plan?.excludeIfPresent ?? []), ...options.excludeIfPresent];
  for (const m of markers) if (m === '' || m.startsWith(':') || m.includes('/')) throw new UsageError(`--exclude-if-present takes a file name (NAME or NAME:HEADER), not "${m}"`);
  return {
    excludes: [...(plan?.exclude ?? []), ...options.exclude, ...options.excludeFile.flatMap(excludeFilePatterns)],
    iexcludes: [...(plan?.iexclude ?? []), ...options.iexclude],
    excludeIfPresent: markers,
    excludeCaches: options.excludeCaches ?? plan?.excludeCaches ?? false,
    ...(limit !== undefined ? { excludeLargerThan: limit } : {}),
  };
}
