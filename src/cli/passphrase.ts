// Where the passphrase comes from. One order for every command, first match wins:
//   1. --password-file or --password-command (not both)
//   2. the plan's passwordFile or passwordCommand (with --plan)
//   3. COFFER_PASSWORD_FILE or COFFER_PASSWORD_COMMAND (not both)
//   4. COFFER_PASSWORD
//   5. a prompt on the terminal (twice for a new passphrase)
// as restic does (its flags default to its variables, so a flag beats a variable). A passphrase is never
// logged and never put on a command line of ours.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { CancelledError, UsageError } from './exit-codes.ts';

export interface PassphraseOptions {
  readonly passwordFile?: string;
  readonly passwordCommand?: string;
}

/** A plan's passphrase settings (config file). */
export interface PlanPassphrase {
  readonly passwordFile?: string;
  readonly passwordCommand?: string;
}

export interface PassphraseSource {
  /** Where it comes from, for messages (never the passphrase). */
  readonly label: string;
  read(): string;
}

const NO_SOURCE = 'no passphrase given and no terminal to ask on: use --password-file, --password-command, COFFER_PASSWORD_FILE, COFFER_PASSWORD_COMMAND or COFFER_PASSWORD';

function stripNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

export function fromFile(file: string): string {
  try {
    return stripNewline(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read password file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function fromCommand(command: string): string {
  const result = spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8', stdio: ['inherit', 'pipe', 'pipe'] });
  if (result.status !== 0) {
    const detail = (result.stderr || result.error?.message || '').trim().split('\n')[0];
    throw new UsageError(`password command failed (exit ${result.status ?? 'signal'})${detail ? `: ${detail}` : ''}`);
  }
  return stripNewline(result.stdout);
}

function fileOrCommand(file: string | undefined, command: string | undefined, names: [string, string]): PassphraseSource | undefined {
  if (file && command) throw new UsageError(`give ${names[0]} or ${names[1]}, not both`);
  if (file) return { label: `${names[0]} ${file}`, read: () => fromFile(file) };
  if (command) return { label: names[1], read: () => fromCommand(command) };
  return undefined;
}

/** The first configured source in the order above; undefined when only a prompt is left. */
export function passphraseSource(options: PassphraseOptions, plan: PlanPassphrase = {}, env: NodeJS.ProcessEnv = process.env): PassphraseSource | undefined {
  const password = env.COFFER_PASSWORD;
  return (
    fileOrCommand(options.passwordFile, options.passwordCommand, ['--password-file', '--password-command']) ??
    fileOrCommand(plan.passwordFile, plan.passwordCommand, ["the plan's passwordFile", "the plan's passwordCommand"]) ??
    fileOrCommand(env.COFFER_PASSWORD_FILE || undefined, env.COFFER_PASSWORD_COMMAND || undefined, ['COFFER_PASSWORD_FILE', 'COFFER_PASSWORD_COMMAND']) ??
    (password ? { label: 'COFFER_PASSWORD', read: () => password } : undefined)
  );
}

/**
 * Asks each question on the terminal (stderr) and reads the answers without echo. readline does the
 * line editing (backspace, Ctrl-U) and its echo goes nowhere; one interface serves every question, so
 * nothing typed between them is lost. Ctrl-C cancels (exit 130), Ctrl-D gives up.
 */
export async function askHidden(questions: readonly string[]): Promise<string[]> {
  if (!process.stdin.isTTY) throw new UsageError(NO_SOURCE);
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = readline.createInterface({ input: process.stdin, output: silent, terminal: true });
  const answers: string[] = [];
  try {
    for (const question of questions) {
      process.stderr.write(question);
      answers.push(await nextLine(rl));
      process.stderr.write('\n');
    }
    return answers;
  } finally {
    rl.close();
  }
}

function nextLine(rl: readline.Interface): Promise<string> {
  return new Promise((resolve, reject) => {
    const stop = (): void => {
      rl.off('line', onLine);
      rl.off('close', onClose);
      rl.off('SIGINT', onInterrupt);
    };
    const onLine = (line: string): void => {
      stop();
      resolve(line);
    };
    const onClose = (): void => {
      stop();
      process.stderr.write('\n');
      reject(new UsageError('no passphrase entered'));
    };
    const onInterrupt = (): void => {
      stop();
      process.stderr.write('\n');
      reject(new CancelledError('cancelled at the passphrase prompt; nothing was changed'));
    };
    rl.on('line', onLine);
    rl.on('close', onClose);
    rl.on('SIGINT', onInterrupt);
  });
}

/** The passphrase of an existing repository. */
export async function readPassphrase(options: PassphraseOptions, plan?: PlanPassphrase): Promise<string> {
  const source = passphraseSource(options, plan);
  if (source) return source.read();
  const [answer] = await askHidden(['passphrase: ']);
  return answer!;
}

/** A passphrase typed twice; the two must match. */
async function typeNewPassphrase(): Promise<string> {
  const [first, second] = await askHidden(['new passphrase: ', 'repeat it: ']);
  if (first !== second) throw new UsageError('the two passphrases differ; nothing was changed, run the command again');
  return first!;
}

function nonEmpty(passphrase: string): string {
  if (passphrase === '') throw new UsageError('an empty passphrase is not allowed');
  return passphrase;
}

/** The first passphrase of a new repository: from the usual sources, else typed twice. */
export async function readInitialPassphrase(options: PassphraseOptions, plan?: PlanPassphrase): Promise<string> {
  const source = passphraseSource(options, plan);
  return nonEmpty(source ? source.read() : await typeNewPassphrase());
}

/** The passphrase `key add` and `key passwd` set: --new-password-file, else COFFER_NEW_PASSWORD, else typed twice. */
export async function readNewPassphrase(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (file) return nonEmpty(fromFile(file));
  if (env.COFFER_NEW_PASSWORD) return env.COFFER_NEW_PASSWORD;
  return nonEmpty(await typeNewPassphrase());
}
