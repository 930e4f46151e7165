// A private OpenSSH ssh-agent for the SFTP tests, listening on a socket in a temporary directory, with
// keys added by the real ssh-add.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { spawnTied } from './tied-child.ts';

const run = promisify(execFile);

export interface SshAgent {
  /** What SSH_AUTH_SOCK is set to. */
  readonly socket: string;
  /** Loads a private key (ssh-add FILE). */
  add(keyFile: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startSshAgent(): Promise<SshAgent> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-agent-'));
  const socket = path.join(dir, 'agent.sock');
  // -D: in the foreground, so the watchdog can end it.
  const child = spawnTied('ssh-agent', ['-D', '-a', socket]);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await fs.stat(socket).then((st) => st.isSocket(), () => false))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('ssh-agent did not start');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  let stopped: Promise<void> | undefined;
  return {
    socket,
    async add(keyFile) {
      await run('ssh-add', ['-q', keyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
    },
    stop() {
      stopped ??= (async () => {
        child.stdin.destroy();
        await exited;
        await fs.rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
