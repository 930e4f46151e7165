// Real agent processes for the fleet tests: `coffer agent` in a child process, as on a user's machine.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MAIN, PASSWORD } from './cli.ts';

export interface AgentProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startAgent(options: { server: string; key: string; dir: string; capacity?: number; transport?: 'auto' | 'websocket' | 'poll'; labels?: readonly string[]; env?: Record<string, string> }): AgentProcess {
  fs.mkdirSync(options.dir, { recursive: true });
  const keyFile = path.join(options.dir, 'key');
  fs.writeFileSync(keyFile, options.key, { mode: 0o600 });
  const args = [MAIN, 'agent', '--server', options.server, '--key-file', keyFile, '--state-dir', path.join(options.dir, 'state'), '--capacity', String(options.capacity ?? 2), '--transport', options.transport ?? 'websocket', ...(options.labels ?? []).flatMap((l) => ['--label', l])];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, COFFER_PASSWORD: PASSWORD, COFFER_DATA_DIR: path.join(options.dir, 'data'), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls `check` until it returns something truthy; fails with `what` after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
