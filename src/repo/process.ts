// Telling whether a process recorded by another run is still there: a pid means something only where it
// was taken, so a recorded process carries its *scope* (host, kernel boot, pid namespace) and is judged
// by its pid only in the same scope. Containers on one kernel share the boot id but not the pid
// namespace; a reboot changes the boot id.
import fs from 'node:fs';
import os from 'node:os';

export function processAlive(pid: number): boolean {
  // pid 0 and negative pids address process groups, not a process.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOrEmpty(read: () => string): string {
  try {
    return read().trim();
  } catch {
    return '';
  }
}

let scope: string | undefined;

/** This process's scope: 'host|boot id|pid namespace' where Linux tells them, else the host name. */
export function processScope(): string {
  scope ??= [os.hostname(), readOrEmpty(() => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')), readOrEmpty(() => fs.readlinkSync('/proc/self/ns/pid'))]
    .filter(Boolean)
    .join('|');
  return scope;
}
