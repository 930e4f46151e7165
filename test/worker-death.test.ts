// A worker thread that dies in the middle of a run (terminated, as an out-of-memory thread or a crash in
// native code would stop it) fails the run with one line, never hangs it, and loses nothing: after a
// chunk worker's death the repository checks clean and the next backup restores byte for byte; after a
// restore worker's death the restore says so and a second restore completes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { coffer, jsonLines, ok, tempDir, type RunResult } from './helpers/cli.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

const KILLER = path.join(import.meta.dirname, 'fixtures/worker-killer.ts');

function killing(script: string, after?: string): Record<string, string> {
  return { NODE_OPTIONS: `--import ${KILLER}`, KILL_WORKER: script, ...(after ? { KILL_AFTER: after } : {}) };
}

function assertOneLine(r: RunResult, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit 1 expected, got ${r.code} (signal ${r.signal}); stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
}

/** Random files (zstd cannot shrink them) over several 16 MiB packs, so a worker dies with more to do. */
function sourceTree(t: TestContext): { dir: string; source: string; repo: string } {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(source, `file-${i}.bin`), seededBytes(`death-${i}`, 10 * 1024 * 1024));
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(source, `small-${i}.txt`), `small file ${i}\n`);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  return { dir, source, repo };
}

/** What a failed restore must not leave: its temporary files. */
function leftovers(target: string): string[] {
  if (!fs.existsSync(target)) return [];
  return fs.readdirSync(target, { recursive: true, encoding: 'utf8' }).filter((name) => path.basename(name).startsWith('.coffer-restore-'));
}

test('a chunk worker dying mid-backup fails the run cleanly; the next backup and a restore succeed', { timeout: 120_000 }, (t) => {
  const { dir, source, repo } = sourceTree(t);
  const died = coffer(['backup', '--repo', repo, '--max-retries', '0', source], { env: killing('chunk-worker', 'pack'), timeoutMs: 60_000 });
  assertOneLine(died, /^coffer: chunk worker failed: exited with code 1$/);
  assert.deepEqual(jsonLines(ok(['snapshots', '--repo', repo, '--json']).stdout).filter((l) => l.type === 'snapshot'), []);
  ok(['check', '--repo', repo, '--read-data']);

  ok(['backup', '--repo', repo, source]);
  ok(['check', '--repo', repo, '--read-data']);
  const target = path.join(dir, 'restored');
  ok(['restore', '--repo', repo, 'latest', '--target', target]);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});

test('a restore worker dying mid-restore fails the restore, never hangs it; a second restore completes', { timeout: 120_000 }, (t) => {
  const { dir, source, repo } = sourceTree(t);
  ok(['backup', '--repo', repo, source]);
  const target = path.join(dir, 'restored');
  for (const when of ['start', undefined]) {
    const died = coffer(['restore', '--repo', repo, 'latest', '--target', target], { env: killing('restore-worker', when), timeoutMs: 60_000 });
    assertOneLine(died, /^coffer: restore worker failed: exited with code 1$/);
    assert.deepEqual(leftovers(target), [], `after a restore worker was killed ${when === 'start' ? 'as it started' : 'after its first answer'}`);
  }
  ok(['restore', '--repo', repo, 'latest', '--target', target]);
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);
});
