// Storage credentials from a command (`credentialsCommand`), e.g. `op read …` or `pass show …`: it
// prints NAME=value lines (AWS_ACCESS_KEY_ID=…, COFFER_SFTP_PASSWORD=…; `export ` and comments allowed)
// or a JSON object — names to values, or the AWS credential_process form
// {"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"SessionToken":…}. The values go into the
// environment the stores read (their `env` option), never into a file, a log or process.env.
//
// Interface:
//   credentialsFromCommand(command, { signal?, timeoutMs? }) → Promise<Record<string, string>>
//   CredentialsError: the message names the command's exit status and never its output
import { execFile } from 'node:child_process';
import { childEnvironment } from './child-env.ts';

export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

const AWS_PROCESS_NAMES: Record<string, string> = {
  AccessKeyId: 'AWS_ACCESS_KEY_ID',
  SecretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  SessionToken: 'AWS_SESSION_TOKEN',
};

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses the command's output; throws CredentialsError (naming the line, never its content). */
export function parseCredentials(text: string): Record<string, string> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      throw new CredentialsError('the credentials command printed something that starts like JSON but is not valid JSON');
    }
    const out: Record<string, string> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key === 'Version' || key === 'Expiration') continue;
      const name = AWS_PROCESS_NAMES[key] ?? key;
      if (!NAME.test(name) || typeof v !== 'string') throw new CredentialsError(`the credentials command's JSON has an entry "${key}" that is not a NAME: "string" pair`);
      out[name] = v;
    }
    return out;
  }
  const out: Record<string, string> = {};
  trimmed.split('\n').forEach((raw, i) => {
    const line = raw.trim().replace(/^export\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = eq > 0 ? line.slice(0, eq) : '';
    if (!NAME.test(name)) throw new CredentialsError(`line ${i + 1} printed by the credentials command is not NAME=value`);
    out[name] = line.slice(eq + 1).replace(/^(['"])(.*)\1$/, '$2');
  });
  return out;
}

export function credentialsFromCommand(command: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    execFile(
      '/bin/sh',
      ['-c', command],
      { env: childEnvironment(), timeout: options.timeoutMs ?? 60_000, maxBuffer: 1 << 20, encoding: 'utf8', ...(options.signal ? { signal: options.signal } : {}) },
      (err, stdout, stderr) => {
        if (err) {
          const status = err.killed ? 'it was stopped (time limit)' : `exit ${typeof err.code === 'number' ? err.code : (err.code ?? err.signal ?? 'unknown')}`;
          // The first line of stderr says what went wrong; a credentials tool does not print secrets there.
          const detail = stderr.trim().split('\n')[0];
          reject(new CredentialsError(`the credentials command failed (${status})${detail ? `: ${detail.slice(0, 200)}` : ''}; run it by hand to see why`));
          return;
        }
        try {
          resolve(parseCredentials(stdout));
        } catch (parseErr) {
          reject(parseErr);
        }
      },
    );
  });
}
