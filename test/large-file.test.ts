// A file over 4 GiB streams through backup and restore (no 32-bit offsets anywhere), in bounded memory,
// and its holes come back as holes. The file is sparse so the test needs no 4 GiB of disk.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CONFIG_FILE, DATA_DIR, HEAVY, jsonLines, MAIN, ok, PASSWORD, tempDir } from './helpers/cli.ts';

const SIZE = 4.5 * 1024 ** 3;

/** Runs coffer under /usr/bin/time and returns its peak resident memory in bytes. */
function peakMemory(args: string[]): number {
  const r = spawnSync('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, MAIN, ...args], { env: { ...process.env, COFFER_PASSWORD: PASSWORD, COFFER_DATA_DIR: DATA_DIR, COFFER_CONFIG: CONFIG_FILE }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(/maxrss=(\d+)/.exec(r.stderr)![1]) * 1024;
}

test('a 4.5 GiB sparse file: backup, restore, same bytes, holes kept, memory bounded', { timeout: 180_000, ...HEAVY }, (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'vm');
  fs.mkdirSync(source);
  const image = path.join(source, 'disk.img');
  const fd = fs.openSync(image, 'w');
  // Data before, across and after the 4 GiB mark.
  for (const [offset, text] of [[0, 'boot sector'], [2 ** 32 - 5, 'across-4GiB'], [SIZE - 4, 'tail']] as const) fs.writeSync(fd, Buffer.from(text), 0, text.length, offset);
  fs.closeSync(fd);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const peak = peakMemory(['backup', '--repo', repo, source]);
  assert.ok(peak < 600 * 1024 ** 2, `backup peak memory ${(peak / 1024 ** 2).toFixed(0)} MiB`);
  const [snapshot] = jsonLines<{ summary: { totalBytes: number } }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.equal(snapshot!.summary.totalBytes, SIZE);

  const out = path.join(dir, 'out');
  ok(['restore', '--repo', repo, 'latest', '--target', out]);
  const restored = path.join(out, source, 'disk.img');
  const st = fs.statSync(restored);
  assert.equal(st.size, SIZE);
  assert.ok(st.blocks * 512 < 1024 ** 2, `restored file allocates ${st.blocks * 512} bytes`);
  const rfd = fs.openSync(restored, 'r');
  const probe = (offset: number, length: number): string => {
    const b = Buffer.alloc(length);
    fs.readSync(rfd, b, 0, length, offset);
    return b.toString();
  };
  assert.equal(probe(0, 11), 'boot sector');
  assert.equal(probe(2 ** 32 - 5, 11), 'across-4GiB');
  assert.equal(probe(SIZE - 4, 4), 'tail');
  fs.closeSync(rfd);
});
