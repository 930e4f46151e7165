#!/usr/bin/env node
// The `coffer` command line: parses, dispatches to a command, and turns any failure into one line and
// an exit code.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { backupCommand } from './commands/backup.ts';
import { checkCommand } from './commands/check.ts';
import { configCommand } from './commands/config.ts';
import { daemonCommand } from './commands/daemon.ts';
import { jobsCommands } from './commands/jobs.ts';
import { diffCommand } from './commands/diff.ts';
import { doctorCommand } from './commands/doctor.ts';
import { dumpCommand } from './commands/dump.ts';
import { initCommand } from './commands/init.ts';
import { keyCommand } from './commands/key.ts';
import { lsCommand } from './commands/ls.ts';
import { restoreCommand } from './commands/restore.ts';
import { setupCommand } from './commands/setup.ts';
import { snapshotsCommand } from './commands/snapshots.ts';
import { logsCommand, statusCommand } from './commands/status.ts';
import { replicaCommand, syncCommand } from './commands/sync.ts';
import { tagCommand } from './commands/tag.ts';
import { findCommand } from './commands/find.ts';
import { statsCommand } from './commands/stats.ts';
import { generateCommand } from './commands/generate.ts';
import { serveCommand } from './commands/serve.ts';
import { mountCommand } from './commands/mount.ts';
import { describeError, EXIT_FATAL } from './errors.ts';

export function buildProgram(): Command {
  const program = new Command('coffer')
    .description('encrypted, deduplicated, compressed backups to several destinations at once')
    .version(VERSION, '-V, --version');
  for (const command of [initCommand(), backupCommand(), snapshotsCommand(), lsCommand(), restoreCommand(), dumpCommand(), diffCommand(), checkCommand(), keyCommand(), syncCommand(), replicaCommand(), statusCommand(), logsCommand(), doctorCommand(), setupCommand(), tagCommand(), findCommand(), statsCommand(), generateCommand(), serveCommand(), mountCommand(), configCommand(), daemonCommand(), ...jobsCommands()]) {
    program.addCommand(command);
  }
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    const help = cmd === program ? 'coffer --help' : `coffer ${cmd.parent === program ? '' : `${cmd.parent?.name()} `}${cmd.name()} --help`;
    cmd.configureOutput({ outputError: (text, write) => write(`coffer: ${text.trim().replace(/^error: /, '')}; see ${help}\n`) });
    cmd.commands.forEach(configure);
  };
  configure(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_FATAL;
    process.stderr.write(`coffer: ${describeError(err)}\n`);
    if (process.env.COFFER_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return EXIT_FATAL;
  }
}

// `coffer ls … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await main(process.argv);
