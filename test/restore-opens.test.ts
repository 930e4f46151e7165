// How often a restore opens each file it writes, counted by strace on the real CLI: once. Issue 12
// measured 157,758 openat calls for the 78,652 files of a kernel tree (create, write, set metadata),
// a cost paid in system time for every small file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { environment, MAIN, ok, tempDir } from './helpers/cli.ts';
import { makeRichTree, treeDifferences } from './helpers/tree.ts';

const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** Distinct inodes of the regular files below `root` (a hard link's second name is a link, not a file). */
function regularFiles(root: string): number {
  const inodes = new Set<bigint>();
  const walk = (dir: Buffer): void => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
      const abs = Buffer.concat([dir, Buffer.from('/'), name]);
      const st = fs.lstatSync(abs, { bigint: true });
      if (st.isDirectory()) walk(abs);
      else if (st.isFile()) inodes.add(st.ino);
    }
  };
  walk(Buffer.from(root));
  return inodes.size;
}

test('a restore opens each regular file it writes once', { skip: hasStrace ? false : 'strace is not installed' }, (t) => {
  const dir = tempDir(t);
  const source = makeRichTree(path.join(dir, 'source'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);

  const target = path.join(dir, 'restored');
  const log = path.join(dir, 'strace.log');
  // -f: the restore's worker threads write the data, and they count too.
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=open,openat', '-o', log, process.execPath, MAIN, 'restore', '--repo', repo, 'latest', '--target', target], {
    env: environment({}),
    maxBuffer: 1 << 30,
  });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);

  // Files are written under a temporary name (.coffer-restore-<run>-<n>.tmp) until they are complete. An
  // O_PATH open reads and writes nothing: mkfifo makes one of the FIFO it made.
  const opens = new Map<string, number>();
  for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
    if (line.includes('O_PATH')) continue;
    const name = /open(?:at)?\(.*?(\.coffer-restore-[0-9a-f]+-[0-9]+\.tmp)"/.exec(line)?.[1];
    if (name) opens.set(name, (opens.get(name) ?? 0) + 1);
  }
  const files = regularFiles(source);
  assert.equal(opens.size, files, `temporary files opened: ${opens.size}, regular files in the source: ${files}`);
  const more = [...opens].filter(([, n]) => n !== 1);
  assert.deepEqual(more, [], 'files opened more than once (name, opens)');
});

test("a restore of more files than Linux's default descriptor limit (4,096) stays within it", { skip: spawnSync('prlimit', ['--version']).status === 0 ? false : 'prlimit is not installed' }, (t) => {
  // Each file of a batch is open until it is complete: the batch must fit the limit with room to spare.
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 4500; i++) fs.writeFileSync(path.join(source, `f${i}`), `file ${i}\n`);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  const target = path.join(dir, 'restored');
  const r = spawnSync('prlimit', ['--nofile=4096:4096', process.execPath, MAIN, 'restore', '--repo', repo, 'latest', '--target', target], { env: environment({}), maxBuffer: 1 << 30 });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});
