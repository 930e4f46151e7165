// Counts files and bytes of the sources ahead of the backup, on its own thread, so progress can show
// totals and an ETA without holding the whole file list in memory.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { Selection } from './selection.ts';
import { entersDirectory, listDirectory, sourceExcluded, walkRules, type WalkRules } from './source-walk.ts';
import type { DirectorySize } from './walk-progress.ts';

export interface CountSetup {
  readonly paths: string[];
  readonly selection: Selection;
  readonly oneFileSystem: boolean;
}

export interface CountMessage {
  readonly files: number;
  readonly bytes: number;
  readonly done: boolean;
  /** Totals of the directories counted since the last message, down to SIZED_DEPTH below a source. */
  readonly dirs: DirectorySize[];
}

/** Directories this far below a source get their size reported (the dashboard's "next directory"); deeper ones are too many to keep. */
const SIZED_DEPTH = 3;

const setup = workerData as CountSetup;
const rules = walkRules(setup.selection);
let files = 0;
let bytes = 0;
let lastReport = Date.now();
let dirs: DirectorySize[] = [];

function report(done: boolean): void {
  parentPort!.postMessage({ files, bytes, done, dirs } satisfies CountMessage);
  dirs = [];
  lastReport = Date.now();
}

/** Files and bytes below `root`: a stack of directories to list, not recursion (trees may be very deep). */
function countBelow(root: Buffer, rules: WalkRules): void {
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

/** Counts `dir` and reports its size; the levels down to SIZED_DEPTH recurse (a bounded depth), deeper ones go by countBelow. */
function count(dir: Buffer, rules: WalkRules, depth: number): void {
  const filesBefore = files;
  const bytesBefore = bytes;
  if (depth < SIZED_DEPTH) {
    for (const entry of listDirectory(dir, rules).entries) {
      if (entry.stat.isFile()) {
        files++;
        bytes += Number(entry.stat.size);
      } else if (entry.stat.isDirectory() && entersDirectory(entry.stat, rules)) {
        count(entry.path, rules, depth + 1);
      }
    }
  } else {
    countBelow(dir, rules);
  }
  dirs.push({ path: dir.toString(), files: files - filesBefore, bytes: bytes - bytesBefore });
  if (Date.now() - lastReport > 250) report(false);
}

for (const path of setup.paths) {
  if (sourceExcluded(path, rules.exclude)) continue;
  const stat = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
  if (stat?.isFile()) {
    files++;
    bytes += Number(stat.size);
  } else if (stat?.isDirectory()) {
    count(Buffer.from(path), { ...rules, ...(setup.oneFileSystem ? { rootDevice: stat.dev } : {}) }, 0);
  }
}
report(true);
