// `coffer server` in a child process, as an administrator runs it: on a free loopback port, with its
// own data directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { MAIN } from './cli.ts';

export interface ServerProcess {
  readonly child: ChildProcess;
  /** http://127.0.0.1:port */
  readonly url: string;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startServerProcess(options: { dataDir: string; listen?: string; env?: Record<string, string> }): Promise<ServerProcess> {
  const child = spawn(process.execPath, [MAIN, 'server', '--data-dir', options.dataDir, '--listen', options.listen ?? '127.0.0.1:0'], {
    env: { ...process.env, COFFER_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      output += d;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`coffer server exited (${code}) before listening: ${output}`)));
  });
  return {
    child,
    url,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
