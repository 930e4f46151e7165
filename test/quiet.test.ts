// -q / --quiet, as restic takes it on every command: no progress and no closing report, only what went
// wrong (warnings, errors) and the results a command is asked for (a listing, a table of snapshots).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, jsonLines, PASSWORD, repoWithSnapshot, tempDir, type RunOptions } from './helpers/cli.ts';

function quietly(args: string[], options: RunOptions = {}): { stdout: string; stderr: string } {
  const r = coffer([...args, '-q'], options);
  assert.equal(r.code, 0, `coffer ${args.join(' ')} -q exited ${r.code}: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

// Regression: every command but backup refused -q ("unknown option '-q'"), the first thing a restic user types.
test('every command that reports what it did takes -q and then prints nothing', (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const other = path.join(dir, 'other');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'first');
  const silent = { stdout: '', stderr: '' };
  assert.deepEqual(quietly(['init', '--repo', repo]), silent);
  assert.deepEqual(quietly(['init', '--repo', other]), silent);
  assert.deepEqual(quietly(['backup', '--repo', repo, source]), silent);
  fs.writeFileSync(path.join(source, 'a.txt'), 'second');
  assert.deepEqual(quietly(['backup', '--repo', repo, source]), silent);
  assert.deepEqual(quietly(['restore', '--repo', repo, 'latest', '--target', path.join(dir, 'out')]), silent);
  assert.equal(fs.readFileSync(path.join(dir, 'out', source, 'a.txt'), 'utf8'), 'second');
  assert.deepEqual(quietly(['check', '--repo', repo, '--read-data']), silent);
  assert.deepEqual(quietly(['tag', '--repo', repo, '--add', 'kept', 'latest']), silent);
  assert.deepEqual(quietly(['copy', '--from-repo', repo, '--to-repo', other], { env: { COFFER_FROM_PASSWORD: PASSWORD } }), silent);
  assert.deepEqual(quietly(['forget', '--repo', repo, '--keep-last', '1']), silent);
  assert.deepEqual(quietly(['prune', '--repo', repo]), silent);
  assert.deepEqual(quietly(['unlock', '--repo', repo]), silent);
  assert.deepEqual(quietly(['repair', 'index', '--repo', repo]), silent);
  const replica = path.join(dir, 'replica');
  assert.deepEqual(quietly(['replica', 'add', '--repo', repo, replica]), silent);
  assert.ok(fs.existsSync(path.join(replica, 'config')), 'the replica was made');
  fs.writeFileSync(path.join(source, 'a.txt'), 'third');
  quietly(['backup', '--repo', repo, source]);
  assert.deepEqual(quietly(['sync', '--from', repo, '--to', replica]), silent);
  assert.match(quietly(['snapshots', '--repo', replica]).stdout, /kept/);
  // What a command is asked for still comes out.
  assert.match(quietly(['snapshots', '--repo', repo]).stdout, /kept/);
  assert.match(quietly(['ls', '--repo', repo, 'latest']).stdout, /a\.txt/);
  assert.ok(jsonLines(quietly(['snapshots', '--repo', repo, '--json']).stdout).length > 0);
});

test('check -q still names what is wrong, and exits 1', (t) => {
  const { repo } = repoWithSnapshot(tempDir(t));
  const [pack] = (fs.readdirSync(path.join(repo, 'data'), { recursive: true, withFileTypes: true }) as fs.Dirent[]).filter((e) => e.isFile());
  fs.rmSync(path.join(pack!.parentPath, pack!.name));
  const check = coffer(['check', '--repo', repo, '-q']);
  assert.equal(check.code, 1);
  assert.match(check.stdout, /^error: pack .* missing/m);
  assert.doesNotMatch(check.stdout, /errors? found|no errors/);
});
