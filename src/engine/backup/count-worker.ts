// Counts files and bytes of the sources ahead of the backup, on its own thread, so progress can show
// totals and an ETA without holding the whole file list in memory.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { Selection } from './selection.ts';
import { entersDirectory, listDirectory, sourceExcluded, walkRules, type WalkRules } from './source-walk.ts';

export interface CountSetup {
  readonly paths: string[];
  readonly selection: Selection;
  readonly oneFileSystem: boolean;
}

export interface CountMessage {
  readonly files: number;
  readonly bytes: number;
  readonly done: boolean;
}

const setup = workerData as CountSetup;
const rules = walkRules(setup.selection);
let files = 0;
let bytes = 0;
let lastReport = Date.now();

function report(done: boolean): void {
  parentPort!.postMessage({ files, bytes, done } satisfies CountMessage);
  lastReport = Date.now();
}

/** Files and bytes below `root`: a stack of directories to list, not recursion (trees may be very deep). */
function count(root: Buffer, rules: WalkRules): void {
  const dirs = [root];
  for (let dir = dirs.pop(); dir; dir = dirs.pop()) {
    for (const entry of listDirectory(dir, rules).entries) {
      if (entry.stat.isFile()) {
        files++;
        bytes += Number(entry.stat.size);
      } else if (entry.stat.isDirectory() && entersDirectory(entry.stat, rules)) {
        dirs.push(entry.path);
      }
    }
    if (Date.now() - lastReport > 250) report(false);
  }
}

for (const path of setup.paths) {
  if (sourceExcluded(path, rules.exclude)) continue;
  const stat = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
  if (stat?.isFile()) {
    files++;
    bytes += Number(stat.size);
  } else if (stat?.isDirectory()) {
    count(Buffer.from(path), { ...rules, ...(setup.oneFileSystem ? { rootDevice: stat.dev } : {}) });
  }
}
report(true);
