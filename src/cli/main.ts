#!/usr/bin/env node
// The `coffer` command line: parses, dispatches to a command, and turns any failure into one line and
// an exit code. A command's module (and everything it imports: engines, stores, SDKs) is loaded only
// when that command runs, so `coffer snapshots` pays for nothing else; `coffer --version` does not even
// load commander (which takes about as long as starting Node).
import type { Command, Help, Option } from 'commander';
import { VERSION } from '../version.ts';
import { environmentHelp } from './environment-help.ts';
import { EXIT_FATAL } from './exit-codes.ts';
import { printFailure, printLine, setJsonOutput, setQuietOutput } from './output.ts';

/** Every command, in the order `coffer --help` lists them, with the module that defines it. */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  init: async () => (await import('./commands/init.ts')).initCommand(),
  backup: async () => (await import('./commands/backup.ts')).backupCommand(),
  snapshots: async () => (await import('./commands/snapshots.ts')).snapshotsCommand(),
  ls: async () => (await import('./commands/ls.ts')).lsCommand(),
  restore: async () => (await import('./commands/restore.ts')).restoreCommand(),
  dump: async () => (await import('./commands/dump.ts')).dumpCommand(),
  diff: async () => (await import('./commands/diff.ts')).diffCommand(),
  check: async () => (await import('./commands/check.ts')).checkCommand(),
  forget: async () => (await import('./commands/forget.ts')).forgetCommand(),
  prune: async () => (await import('./commands/prune.ts')).pruneCommand(),
  unlock: async () => (await import('./commands/unlock.ts')).unlockCommand(),
  repair: async () => (await import('./commands/repair.ts')).repairCommand(),
  copy: async () => (await import('./commands/copy.ts')).copyCommand(),
  key: async () => (await import('./commands/key.ts')).keyCommand(),
  sync: async () => (await import('./commands/sync.ts')).syncCommand(),
  replica: async () => (await import('./commands/sync.ts')).replicaCommand(),
  status: async () => (await import('./commands/status.ts')).statusCommand(),
  logs: async () => (await import('./commands/status.ts')).logsCommand(),
  doctor: async () => (await import('./commands/doctor.ts')).doctorCommand(),
  setup: async () => (await import('./commands/setup.ts')).setupCommand(),
  tag: async () => (await import('./commands/tag.ts')).tagCommand(),
  find: async () => (await import('./commands/find.ts')).findCommand(),
  stats: async () => (await import('./commands/stats.ts')).statsCommand(),
  generate: async () => (await import('./commands/generate.ts')).generateCommand(),
  serve: async () => (await import('./commands/serve.ts')).serveCommand(),
  mount: async () => (await import('./commands/mount.ts')).mountCommand(),
  config: async () => (await import('./commands/config.ts')).configCommand(),
  daemon: async () => (await import('./commands/daemon.ts')).daemonCommand(),
  jobs: async () => daemonControlCommand('jobs'),
  pause: async () => daemonControlCommand('pause'),
  resume: async () => daemonControlCommand('resume'),
  cancel: async () => daemonControlCommand('cancel'),
  run: async () => daemonControlCommand('run'),
  server: async () => (await import('./commands/server.ts')).serverCommand(),
  agent: async () => (await import('./commands/agent.ts')).agentCommand(),
};

/** One of the commands that steer a running daemon (they share one module). */
async function daemonControlCommand(name: string): Promise<Command> {
  return (await import('./commands/jobs.ts')).jobsCommands().find((c) => c.name() === name)!;
}

/** Commands that need every other one defined: the completions and the man page list them all. */
const NEEDS_ALL = new Set(['generate']);

/**
 * `coffer help backup` (or `help key add`) as `coffer backup --help`: commander's own help command stops
 * at the first name and lists an unknown one with every command, where `--help` names the typo.
 */
function helpAsOption(argv: readonly string[]): string[] {
  const [, , first, ...rest] = argv;
  if (first !== 'help' || rest.length === 0 || rest[0]!.startsWith('-')) return [...argv];
  // An unknown name alone, so that commander names it instead of printing the program's help.
  return [...argv.slice(0, 2), ...(Object.hasOwn(COMMANDS, rest[0]!) ? [...rest, '--help'] : [rest[0]!])];
}

/** An option's help without commander's "(default: [])" on repeatable options that start empty. */
function withoutEmptyDefault(text: string, option: Option): string {
  return Array.isArray(option.defaultValue) && option.defaultValue.length === 0 ? text.replace(/ \(default: \[\]\)$/, '') : text;
}

/** The arguments before `--`: options after it are file names, not ours. */
function ownArguments(argv: readonly string[]): string[] {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return end < 0 ? args : args.slice(0, end);
}

/**
 * The commands to load in full: the one being run, or all of them when the program's own help lists
 * their descriptions or `generate` describes them. The others only need their names, for commander's
 * "did you mean" on a typo.
 */
function commandsToLoad(argv: readonly string[]): string[] {
  const args = ownArguments(argv);
  const first = args[0];
  const all = Object.keys(COMMANDS);
  if (first === undefined || first === '-h' || first === '--help' || first === 'help' || NEEDS_ALL.has(first)) return all;
  return [first];
}

export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const { Command, Help } = await import('commander');
  const optionDescription = function (this: Help, option: Option): string {
    return withoutEmptyDefault(Help.prototype.optionDescription.call(this, option), option);
  };
  const program = new Command('coffer')
    .description('encrypted, deduplicated, compressed backups to several destinations at once')
    .version(VERSION, '-V, --version')
    .addHelpText('after', environmentHelp());
  const load = new Set(commandsToLoad(argv));
  for (const [name, define] of Object.entries(COMMANDS)) program.addCommand(load.has(name) ? await define() : new Command(name));
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureHelp({ optionDescription });
    const help = cmd === program ? 'coffer --help' : `coffer ${cmd.parent === program ? '' : `${cmd.parent?.name()} `}${cmd.name()} --help`;
    cmd.configureOutput({ outputError: (text) => printFailure(`${text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')}; see ${help}`, EXIT_FATAL) });
    cmd.commands.forEach(configure);
  };
  configure(program);
  program.hook('preAction', (_program, action) => setQuietOutput(action.opts().quiet === true));
  return program;
}

export async function main(commandLine: string[]): Promise<number> {
  const argv = helpAsOption(commandLine);
  const args = ownArguments(argv);
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    printLine(VERSION);
    return 0;
  }
  setJsonOutput(args.includes('--json'));
  try {
    await (await buildProgram(argv)).parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    const { CommanderError } = await import('commander');
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_FATAL;
    const { describeError, exitCodeOf } = await import('./errors.ts');
    const code = exitCodeOf(err);
    printFailure(describeError(err), code);
    if (process.env.COFFER_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return code;
  }
}

// `coffer ls … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await main(process.argv);
