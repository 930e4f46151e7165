// Where the passphrase comes from: --password-file, --password-command, COFFER_PASSWORD, or a prompt
// on the terminal. It is never logged and never put on a command line of ours.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { UsageError } from './errors.ts';

export interface PassphraseOptions {
  readonly passwordFile?: string;
  readonly passwordCommand?: string;
}

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

/** Reads a line from the terminal without echoing it. */
export async function prompt(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) throw new UsageError('no passphrase given: set COFFER_PASSWORD, --password-file or --password-command');
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  let answer = '';
  try {
    for await (const chunk of input) {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n') return answer;
        if (ch === '\u0003') throw new UsageError('cancelled');
        if (ch === '\u007f') answer = answer.slice(0, -1);
        else answer += ch;
      }
    }
    return answer;
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}

/** The passphrase of an existing repository. */
export async function readPassphrase(options: PassphraseOptions): Promise<string> {
  if (options.passwordFile) return fromFile(options.passwordFile);
  if (options.passwordCommand) return fromCommand(options.passwordCommand);
  const env = process.env.COFFER_PASSWORD;
  if (env !== undefined && env !== '') return env;
  return prompt('passphrase: ');
}

/** A passphrase being set: from the given sources or typed twice. */
export async function readNewPassphrase(sources: { file?: string; env: string | undefined; fallback?: () => Promise<string> }): Promise<string> {
  let passphrase: string;
  if (sources.file) passphrase = fromFile(sources.file);
  else if (sources.env) passphrase = sources.env;
  else if (sources.fallback) passphrase = await sources.fallback();
  else {
    passphrase = await prompt('new passphrase: ');
    if ((await prompt('repeat it: ')) !== passphrase) throw new UsageError('the passphrases do not match');
  }
  if (passphrase === '') throw new UsageError('an empty passphrase is not allowed');
  return passphrase;
}
