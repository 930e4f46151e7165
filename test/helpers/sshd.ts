// Starts a private OpenSSH sshd for the SFTP store tests: loopback only, a random free port, its own
// host keys, client key, known_hosts and config in a temporary directory, sftp served by internal-sftp.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { spawnTied } from './tied-child.ts';

const SSHD = '/usr/sbin/sshd';
const run = promisify(execFile);

export interface SshServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The private key the server accepts. */
  readonly keyPath: string;
  /** A known_hosts file with the server's host keys (Ed25519 and ECDSA), as ssh-keyscan would write it. */
  readonly knownHostsPath: string;
  /** A directory for the test to use, removed by stop(). */
  readonly dir: string;
  /** Kills every session (the clients see their connection drop); the server keeps accepting new ones. */
  dropConnections(): Promise<void>;
  /** Suspends every session, like a server that hangs: requests get no answer until the sessions die. */
  freeze(): Promise<void>;
  /** Kills the server and every session it serves (like a crash), then removes its files. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Every process below `pid`, found through /proc (Linux). */
async function descendants(pid: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // The command name in parentheses may hold spaces; the parent pid is the second field after it.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parentOf.set(Number(entry), ppid);
  }
  const found: number[] = [];
  const walk = (parent: number): void => {
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

/** Throws a clear message when the OpenSSH server is not installed. */
export async function requireSshd(): Promise<void> {
  try {
    await fs.access(SSHD);
  } catch {
    throw new Error(`OpenSSH server not found at ${SSHD}; install it with: apt-get install -y openssh-server`);
  }
}

export async function startSshd(): Promise<SshServer> {
  await requireSshd();
  // sshd refuses to start without its privilege separation directory.
  await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-sshd-'));
  // Two host keys, so that tests can check which key type the client asks for.
  const hostKeys = [path.join(dir, 'host_key'), path.join(dir, 'host_key_ecdsa')];
  const keyPath = path.join(dir, 'client_key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKeys[0]!]);
  await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', hostKeys[1]!]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath]);
  await fs.copyFile(`${keyPath}.pub`, path.join(dir, 'authorized_keys'));
  const port = await freePort();
  const knownHostsPath = path.join(dir, 'known_hosts');
  const knownHosts = await Promise.all(
    hostKeys.map(async (key) => {
      // A .pub file is `type base64 comment`; known_hosts wants `[host]:port type base64`.
      const [type, base64] = (await fs.readFile(`${key}.pub`, 'utf8')).split(' ');
      return `[127.0.0.1]:${port} ${type} ${base64}\n`;
    }),
  );
  await fs.writeFile(knownHostsPath, knownHosts.join(''));
  const pidFile = path.join(dir, 'sshd.pid');
  const config = path.join(dir, 'sshd_config');
  await fs.writeFile(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      ...hostKeys.map((key) => `HostKey ${key}`),
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // sshd re-executes itself for every connection, which needs its absolute path.
  const child = spawnTied(SSHD, ['-D', '-e', '-f', config]);
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve();
    }),
  );

  const killAll = (pids: number[], signal: NodeJS.Signals = 'SIGKILL'): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone: a session may end between listing and killing.
      }
    }
  };
  // sshd forks one process per session (plus a privilege-separated child) below the pid it records.
  const sessions = async (): Promise<number[]> => descendants(Number(await fs.readFile(pidFile, 'utf8')));
  const stop = async (): Promise<void> => {
    // Sessions are listed before anything dies: once sshd is gone they are no longer its children.
    killAll([child.pid!, ...(await descendants(child.pid!))]);
    child.stdin!.destroy();
    await exited;
    await fs.rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (exitCode !== undefined || Date.now() > deadline) {
      await stop();
      throw new Error(`sshd did not start (exit code ${exitCode}): ${log.trim() || 'no output'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    user: os.userInfo().username,
    keyPath,
    knownHostsPath,
    dir,
    dropConnections: async () => killAll(await sessions()),
    freeze: async () => killAll(await sessions(), 'SIGSTOP'),
    stop: () => (stopped ??= stop()),
  };
}
