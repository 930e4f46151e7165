// A small tmpfs for tests of full disks; undefined (with the test skipped and the reason given) where
// mounting is not allowed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

export function smallDisk(t: TestContext, size: string): string | undefined {
  // Not inside a test's temporary directory, whose clean-up runs first and could not remove a mount point.
  const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-small-disk-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mount]);
  if (mounted.status !== 0) {
    fs.rmSync(mount, { recursive: true, force: true });
    t.skip(`cannot mount a small tmpfs here (${mounted.stderr.toString().trim()})`);
    return undefined;
  }
  t.after(() => {
    spawnSync('umount', ['-l', mount]);
    fs.rmSync(mount, { recursive: true, force: true });
  });
  return mount;
}

/** Grows or shrinks the disk (tmpfs refuses to shrink below what it holds). */
export function resizeDisk(mount: string, size: string | number): boolean {
  return spawnSync('mount', ['-o', `remount,size=${size}`, mount]).status === 0;
}
