// A server run in a child process announces its port with a line "listening on PORT".
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

/** The port `child` says it listens on; rejects, with what it printed, if it exits first. */
export function listeningPort(child: ChildProcessWithoutNullStreams, what: string): Promise<number> {
  let output = '';
  return new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /listening on (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited with code ${code} before listening: ${output.trim()}`)));
  });
}
