// Streamed sources from the CLI: `coffer backup --stdin --stdin-filename NAME` stores a pipe of any size
// as one file, chunked as it comes (no temporary copy, memory bounded), deduplicated like any file; a
// plan's dump command that fails leaves no snapshot behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, HEAVY, jsonLines, MAIN, ok, okBytes, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { seededBytes } from './helpers/tree.ts';

function repository(t: import('node:test').TestContext): { dir: string; repo: string } {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  return { dir, repo };
}

test('--stdin stores standard input as one file, restorable byte for byte and deduplicated like a file', (t) => {
  const { dir, repo } = repository(t);
  const dump = seededBytes('dump', 20 << 20);
  const first = summaryOf(ok(['backup', '--repo', repo, '--json', '--stdin', '--stdin-filename', 'app.sql'], { input: dump as unknown as string }).stdout);
  assert.equal(first.filesNew, 1);
  assert.ok(okBytes(['dump', '--repo', repo, 'latest', '/app.sql']).equals(dump));
  const listing = ok(['ls', '--repo', repo, 'latest', '-l']).stdout;
  assert.match(listing, /^-rw------- .* 20971520 .* \/app\.sql$/m, 'a dump may hold secrets: the file is private');
  const snapshots = jsonLines<{ paths: string[] }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.deepEqual(snapshots[0]!.paths, ['/app.sql']);
  // The same bytes again, from stdin or from a file, add no data.
  const again = summaryOf(ok(['backup', '--repo', repo, '--json', '--stdin', '--stdin-filename', 'app.sql'], { input: dump as unknown as string }).stdout);
  assert.equal(again.dataBlobs, 0);
  const file = path.join(dir, 'app.sql');
  fs.writeFileSync(file, dump);
  assert.equal(summaryOf(ok(['backup', '--repo', repo, '--json', file]).stdout).dataBlobs, 0, 'a stream is chunked exactly as a file with the same bytes');
  // Without a name it is /stdin.
  ok(['backup', '--repo', repo, '--stdin'], { input: 'hello' });
  assert.equal(okBytes(['dump', '--repo', repo, 'latest', '/stdin']).toString(), 'hello');
});

test('--stdin mistakes are one clear line', (t) => {
  const { repo } = repository(t);
  for (const [args, message] of [
    [['--stdin-filename', 'x.sql'], /^coffer: --stdin-filename names what --stdin reads; add --stdin\n$/],
    [['--stdin', '--stdin-filename', '../x'], /^coffer: --stdin-filename takes a file name without "\/", not "\." or "\.\.", not "\.\.\/x"\n$/],
    [['--stdin', '--stdin-filename', ''], /^coffer: --stdin-filename takes /],
  ] as const) {
    const r = coffer(['backup', '--repo', repo, ...args], { input: 'x' });
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, message);
  }
});

test('a stream of 1 GiB goes through in bounded memory', { timeout: 180_000, ...HEAVY }, (t) => {
  const { repo } = repository(t);
  const r = spawnSync('/bin/sh', ['-c', `head -c 1073741824 /dev/zero | /usr/bin/time -f maxrss=%M "${process.execPath}" "${MAIN}" backup --repo "${repo}" --json --stdin --stdin-filename zeros`], {
    env: { ...process.env, COFFER_PASSWORD: PASSWORD },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const summary = jsonLines(r.stdout).find((l) => l.type === 'summary')!;
  assert.equal(summary.totalBytes, 1 << 30);
  const peak = Number(/maxrss=(\d+)/.exec(r.stderr)![1]) * 1024;
  assert.ok(peak < 400 * 1024 ** 2, `peak memory ${(peak / 1024 ** 2).toFixed(0)} MiB`);
});

test("a plan's dump command that fails or exits non-zero fails the backup, and its half dump is in no snapshot", (t) => {
  const { dir, repo } = repository(t);
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    `plans:\n  db:\n    repos: [${repo}]\n    sources: [{ type: command, command: "head -c 3000000 /dev/urandom; echo 'connection lost' >&2; exit 3", filename: db.dump }]\n` +
      `  missing:\n    repos: [${repo}]\n    sources: [{ type: postgres, database: app, command: /nonexistent/pg_dump }]\n` +
      `retries: { max: 0 }\n`,
  );
  const r = coffer(['backup', '--plan', 'db', '--config', config]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'coffer: /db.dump: the command of source db.dump exited with status 3: connection lost; no snapshot was made\n');
  const gone = coffer(['backup', '--plan', 'missing', '--config', config]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^coffer: \/app\.sql: pg_dump is not installed \(Debian: apt-get install postgresql-client\) or not on the PATH; no snapshot was made\n$/);
  assert.deepEqual(jsonLines(ok(['snapshots', '--repo', repo, '--json']).stdout), []);
  assert.match(ok(['check', '--repo', repo]).stdout, /no errors were found/);
});
