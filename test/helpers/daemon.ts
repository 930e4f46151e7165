// A real `coffer daemon` process for the daemon tests: its own data directory, configuration and test
// clock (COFFER_TEST_CLOCK, see docs/DAEMON.md), its log collected, and its status read over the same
// control socket the CLI uses.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { controlRequest } from '../../src/daemon/control.ts';
import type { DaemonStatus, JobView } from '../../src/daemon/status.ts';
import { coffer, MAIN, PASSWORD, tempDir, type RunResult } from './cli.ts';

export interface DaemonSetup {
  /** The configuration file's text. */
  readonly config: string;
  readonly env?: Record<string, string | undefined>;
}

export class DaemonProcess {
  readonly dir: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly clockFile: string;
  private child!: ChildProcess;
  private exited!: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly env: Record<string, string | undefined>;
  log = '';

  private constructor(t: TestContext, setup: DaemonSetup) {
    this.dir = tempDir(t, 'coffer-daemon-');
    this.dataDir = path.join(this.dir, 'data');
    this.configFile = path.join(this.dir, 'config.yaml');
    this.clockFile = path.join(this.dir, 'clock');
    this.env = setup.env ?? {};
    fs.writeFileSync(this.configFile, setup.config);
    t.after(() => this.kill());
  }

  /** A daemon that has started (its control socket answers). */
  static async start(t: TestContext, setup: DaemonSetup): Promise<DaemonProcess> {
    const daemon = new DaemonProcess(t, setup);
    await daemon.launch();
    return daemon;
  }

  /** Starts the daemon (again, after stop) on the same data directory. */
  async launch(): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      COFFER_PASSWORD: PASSWORD,
      COFFER_DATA_DIR: this.dataDir,
      COFFER_CONFIG: this.configFile,
      COFFER_TEST_CLOCK: this.clockFile,
      ...this.env,
    };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const from = this.log.length;
    this.child = spawn(process.execPath, [MAIN, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    await Promise.race([
      this.waitFor(/daemon started/, 60_000, from),
      this.exited.then(({ code }) => {
        throw new Error(`the daemon exited with ${code} before starting:\n${this.log.slice(from)}`);
      }),
    ]);
  }

  /** Moves the daemon's wall clock by `ms` (a machine waking from sleep, seen from the daemon). */
  jumpClock(ms: number): void {
    const now = Number(fs.readFileSync(this.clockFile, { encoding: 'utf8', flag: 'a+' }) || '0');
    fs.writeFileSync(this.clockFile, String(now + ms));
  }

  /** Waits for a log line matching `pattern` (after `from`, an offset in the log). */
  async waitFor(pattern: RegExp, timeoutMs = 60_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.log.slice(from).match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms; the log:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  count(pattern: RegExp): number {
    return this.log.split('\n').filter((l) => pattern.test(l)).length;
  }

  async status(): Promise<DaemonStatus> {
    try {
      return (await controlRequest(this.dataDir, 'GET', '/v1/status')) as DaemonStatus;
    } catch (err) {
      throw new Error(`${(err as Error).message}; the daemon's log:\n${this.log}`, { cause: err });
    }
  }

  async job(id: number): Promise<JobView | undefined> {
    return (await this.status()).jobs.find((j) => j.id === id);
  }

  /** Polls the status until `check` holds. */
  async until(check: (status: DaemonStatus) => boolean, timeoutMs = 60_000): Promise<DaemonStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.status();
      if (check(status)) return status;
      if (Date.now() > deadline) throw new Error(`the daemon's status never got there; last:\n${JSON.stringify(status, null, 1)}\nlog:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Queues a run of `plan` over the control socket (what `coffer run` does, without starting a CLI); returns the job id. */
  async run(plan: string): Promise<number> {
    const reply = (await controlRequest(this.dataDir, 'POST', '/v1/run', { plan })) as { job: number };
    return reply.job;
  }

  /** The CLI, on this daemon's data directory and configuration. */
  cli(args: string[], env: Record<string, string | undefined> = {}): RunResult {
    return coffer(args, { env: { COFFER_DATA_DIR: this.dataDir, COFFER_CONFIG: this.configFile, ...env } });
  }

  /** Sends a signal (SIGHUP: reload the configuration). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    return this.exited;
  }

  private kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
