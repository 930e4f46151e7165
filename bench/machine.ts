// A description of the machine for the report header: results are only comparable on like hardware.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { basename } from 'node:path';

const GiB = 2 ** 30;

function readOr(path: string, fallback: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : fallback;
}

function disk(dir: string): string {
  let source = '?';
  let fstype = '?';
  try {
    [source = '?', fstype = '?'] = execFileSync('findmnt', ['-no', 'SOURCE,FSTYPE', '-T', dir], { encoding: 'utf8' }).trim().split(/\s+/);
  } catch {
    // findmnt is missing or the mount is unusual: keep the question marks.
  }
  const fs = statfsSync(dir);
  // The kernel flag; virtual disks often claim to be rotational whatever backs them.
  const rotational = readOr(`/sys/block/${basename(source)}/queue/rotational`, '?');
  return `${source} (${fstype}, ${((fs.blocks * fs.bsize) / GiB).toFixed(0)} GiB, rotational=${rotational})`;
}

export function machineInfo(workDir: string): string[] {
  const cpu = /model name\s*:\s*(.*)/.exec(readOr('/proc/cpuinfo', ''))?.[1] ?? cpus()[0]?.model ?? '?';
  const os = /PRETTY_NAME="(.*)"/.exec(readOr('/etc/os-release', ''))?.[1] ?? 'Linux';
  return [
    `CPU: ${cpu}, ${cpus().length} cores`,
    `RAM: ${(totalmem() / GiB).toFixed(1)} GiB`,
    `Disk (work and cache): ${disk(workDir)}`,
    `OS: ${os}, kernel ${release()}`,
    // Other work on the machine skews every figure; a load near 0 at the start suggests the run had it to itself.
    `Load average (1/5/15 min) at the start of the run: ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`,
  ];
}
