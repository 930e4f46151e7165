// Starts a server program for a test so that it dies with the test process: a shell around it kills it
// when its stdin (held by the test process) closes, which happens however the test process ends.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

const WATCHDOG = 'exec 3<&0; "$@" & s=$!; (cat <&3 >/dev/null; kill -9 $s 2>/dev/null) & wait $s';

/** `command args` under the watchdog; stdout is dropped, stderr is the program's. Kill the whole group to stop it. */
export function spawnTied(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcessByStdio<Writable, null, Readable> {
  return spawn('sh', ['-c', WATCHDOG, 'sh', command, ...args], { stdio: ['pipe', 'ignore', 'pipe'], ...(env ? { env } : {}) });
}
