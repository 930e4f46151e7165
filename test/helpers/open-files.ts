// Files a process holds open under a directory, unlinked ones too, as Linux shows them in /proc/PID/fd
// (an unlinked file reads "/path (deleted)"): the spool's packs on disk have no name to list.
import fs from 'node:fs';

export function openFilesUnder(dir: string, pid: number | 'self' = 'self'): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      return target.startsWith(`${dir}/`) ? [target] : [];
    } catch {
      return []; // closed between the listing and the look
    }
  });
}
