// Running coffer on a real pseudo-terminal, as someone typing at a shell would: util-linux `script`
// gives the command a pty and forwards what the test "types" once the expected prompt has appeared.
import { spawn } from 'node:child_process';
import { environment, MAIN, type RunOptions } from './cli.ts';

export interface Keystrokes {
  /** Typed once the output since the previous step contains this. */
  readonly after: string;
  /** What to type: '\r' is Enter, '\x03' Ctrl-C, '\x04' Ctrl-D. */
  readonly type: string;
}

export interface TerminalResult {
  readonly code: number | null;
  /** Everything the terminal showed (stdout and stderr of the command, as one stream). */
  readonly output: string;
}

function quote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

export function onTerminal(args: string[], steps: readonly Keystrokes[], options: Pick<RunOptions, 'env'> & { timeoutMs?: number } = {}): Promise<TerminalResult> {
  const env = environment(options);
  const command = [process.execPath, MAIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let seen = 0;
  let step = 0;
  const advance = (): void => {
    while (step < steps.length) {
      const at = output.indexOf(steps[step]!.after, seen);
      if (at < 0) return;
      seen = at + steps[step]!.after.length;
      child.stdin.write(steps[step]!.type);
      step++;
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    advance();
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`coffer ${args.join(' ')} did not finish on the terminal; it showed:\n${output}`));
    }, options.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
