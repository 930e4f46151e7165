// Output conventions (docs/JSON.md): --json is JSON lines with a `type` on every line, for results and
// for errors; exit codes 10 and 12; local times; singulars; help that lists environment variables and
// only the options a command uses.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { count, formatTime } from '../src/cli/format.ts';
import { coffer, jsonLines, ok, tempDir } from './helpers/cli.ts';

/** Every line of stdout is a JSON object with a string `type`; returns the types in order. */
function types(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const value = JSON.parse(line) as { type?: unknown };
      assert.equal(typeof value.type, 'string', `no type in ${line}`);
      return value.type as string;
    });
}

function repository(t: import('node:test').TestContext): { dir: string; repo: string; source: string } {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(path.join(source, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(source, 'sub', 'one.txt'), 'one');
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  return { dir, repo, source };
}

test('--json: every line of every command has a type', (t) => {
  const { dir, repo, source } = repository(t);
  const env = { COFFER_DATA_DIR: path.join(dir, 'data') };
  assert.deepEqual(types(ok(['init', '--repo', path.join(dir, 'other'), '--json']).stdout), ['init']);
  assert.equal(types(ok(['backup', '--repo', repo, '--json', source], { env }).stdout).at(-1), 'summary');
  fs.writeFileSync(path.join(source, 'two.txt'), 'two');
  ok(['backup', '--repo', repo, source], { env });
  assert.deepEqual(types(ok(['snapshots', '--repo', repo, '--json']).stdout), ['snapshot', 'snapshot']);
  assert.deepEqual(new Set(types(ok(['ls', '--repo', repo, 'latest', '--json']).stdout)), new Set(['node']));
  const ls = jsonLines<{ path: string; nodeType: string }>(ok(['ls', '--repo', repo, 'latest', '--json']).stdout);
  assert.ok(ls.some((n) => n.path === `${source}/sub/one.txt` && n.nodeType === 'file'));
  const snaps = jsonLines<{ id: string }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  const diff = types(ok(['diff', '--repo', repo, snaps[0]!.id, snaps[1]!.id, '--json']).stdout);
  assert.deepEqual([new Set(diff.slice(0, -1)), diff.at(-1)], [new Set(['change']), 'summary']);
  assert.deepEqual(types(ok(['restore', '--repo', repo, 'latest', '--target', path.join(dir, 'r'), '--json']).stdout).filter((x) => x !== 'status'), ['summary']);
  assert.deepEqual(types(ok(['check', '--repo', repo, '--json']).stdout), ['summary']);
  assert.deepEqual(types(ok(['key', 'list', '--repo', repo, '--json']).stdout), ['key']);
  assert.deepEqual(types(ok(['status', '--json'], { env }).stdout), ['status-report']);
  assert.deepEqual(new Set(types(ok(['logs', '--json'], { env }).stdout)), new Set(['log']));
  const doctor = types(ok(['doctor', '--repo', repo, '--json'], { env }).stdout);
  assert.equal(doctor.at(-1), 'summary');
  assert.ok(doctor.slice(0, -1).every((x) => x === 'check'));
  assert.deepEqual(types(ok(['sync', '--from', repo, '--to', path.join(dir, 'copy'), '--json']).stdout).filter((x) => x !== 'status'), ['synced']);
  // Part B's commands.
  assert.deepEqual(types(ok(['find', '--repo', repo, '*.txt', '--json']).stdout), ['match', 'match', 'match', 'summary']);
  assert.deepEqual(types(ok(['stats', '--repo', repo, '--json']).stdout), ['stats']);
  assert.deepEqual(types(ok(['snapshots', '--repo', repo, '--group-by', 'host', '--json']).stdout), ['group']);
  assert.deepEqual(types(ok(['tag', '--repo', repo, '--add', 'x', 'latest', '--json']).stdout), ['retagged', 'summary']);
});

test('--json: a failure is an error line with the exit code on stdout, and one line on stderr', (t) => {
  const { dir, repo } = repository(t);
  const missing = coffer(['snapshots', '--repo', path.join(dir, 'nowhere'), '--json']);
  assert.equal(missing.code, 10);
  const [error] = jsonLines<{ type: string; message: string; exitCode: number }>(missing.stdout);
  assert.equal(error!.type, 'error');
  assert.equal(error!.exitCode, 10);
  assert.match(error!.message, /is not a Coffer repository/);
  assert.match(missing.stderr, /^coffer: .*is not a Coffer repository.*\n$/);

  const wrong = coffer(['snapshots', '--repo', repo, '--json'], { env: { COFFER_PASSWORD: 'not it' } });
  assert.equal(wrong.code, 12);
  assert.deepEqual(jsonLines(wrong.stdout).map((l) => [l.type, l.exitCode]), [['error', 12]]);

  const typo = coffer(['snapshots', '--repo', repo, '--jsno', '--json']);
  assert.equal(typo.code, 1);
  assert.deepEqual(jsonLines(typo.stdout).map((l) => l.type), ['error']);
  assert.match(typo.stderr, /^coffer: unknown option '--jsno'.*; see coffer snapshots --help\n$/);
});

test('exit codes 10 (no repository) and 12 (wrong passphrase), with no --json as well', (t) => {
  const { dir, repo } = repository(t);
  assert.equal(coffer(['ls', '--repo', path.join(dir, 'nowhere'), 'latest']).code, 10);
  assert.equal(coffer(['check', '--repo', repo], { env: { COFFER_PASSWORD: 'nope' } }).code, 12);
  assert.equal(coffer(['sync', '--from', path.join(dir, 'nowhere'), '--to', path.join(dir, 'x')]).code, 10);
});

test('times are local; counts take the singular for one', (t) => {
  const { dir, repo, source } = repository(t);
  ok(['backup', '--repo', repo, source]);
  const [snap] = jsonLines<{ time: string }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.match(snap!.time, /Z$/, 'JSON keeps UTC');
  const utc = new Date(snap!.time);
  const inTokyo = new Date(utc.getTime() + 9 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
  const table = ok(['snapshots', '--repo', repo], { env: { TZ: 'Asia/Tokyo' } }).stdout;
  assert.ok(table.includes(inTokyo), `Tokyo time ${inTokyo} in:\n${table}`);
  assert.match(table, /^1 snapshot$/m);
  const restored = ok(['restore', '--repo', repo, 'latest', '--target', path.join(dir, 'r')]).stdout;
  assert.match(restored, /^restored 1 file, \d+ directories, 3 B /m);
  assert.equal(count(1, 'directory', 'directories'), '1 directory');
  assert.equal(count(2, 'directory', 'directories'), '2 directories');
  assert.match(ok(['check', '--repo', repo]).stdout, /^checked 1 snapshot, \d+ trees, \d+ packs$/m);
});

test('formatTime: local time, with the UTC offset when it is not the local zone\'s offset now', () => {
  const zone = process.env.TZ;
  process.env.TZ = 'Europe/Berlin';
  try {
    const summer = new Date('2024-07-01T10:00:00Z');
    assert.equal(formatTime('2024-07-15T12:00:00Z', summer), '2024-07-15 14:00:00');
    assert.equal(formatTime('2024-01-15T12:00:00Z', summer), '2024-01-15 13:00:00 +01:00', 'winter time seen in summer');
    assert.equal(formatTime('2024-01-15T12:00:00Z', new Date('2024-02-01T00:00:00Z')), '2024-01-15 13:00:00');
  } finally {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  }
});

test('help lists the environment variables, and options only where the command uses them', () => {
  const top = ok(['--help']).stdout;
  for (const name of ['COFFER_REPO', 'COFFER_REPOSITORY_FILE', 'COFFER_PASSWORD_FILE', 'COFFER_PASSWORD_COMMAND', 'COFFER_PASSWORD', 'COFFER_CONFIG', 'COFFER_DATA_DIR']) {
    assert.match(top, new RegExp(`^  ${name} `, 'm'), `coffer --help lists ${name}`);
  }
  const snapshots = ok(['snapshots', '--help']).stdout;
  assert.match(snapshots, /^Environment:$/m);
  assert.match(snapshots, /^  COFFER_PASSWORD_COMMAND /m);
  assert.doesNotMatch(snapshots, /COFFER_DATA_DIR|COFFER_NEW_PASSWORD/);
  assert.doesNotMatch(snapshots, /--limit-upload/, 'snapshots uploads nothing');
  assert.match(snapshots, /--limit-download/);
  assert.match(snapshots, /--plan <name>/);
  assert.match(ok(['backup', '--help']).stdout, /--limit-upload[\s\S]*^ {2}COFFER_DATA_DIR /m);
  assert.doesNotMatch(ok(['dump', '--help']).stdout, /--json/, 'dump writes bytes, not JSON');
  assert.match(ok(['key', 'add', '--help']).stdout, /^ {2}COFFER_NEW_PASSWORD /m);
  assert.match(ok(['status', '--help']).stdout, /^ {2}COFFER_DATA_DIR /m);
  assert.match(ok(['jobs', '--help']).stdout, /^ {2}COFFER_DATA_DIR /m);
  assert.match(ok(['config', 'check', '--help']).stdout, /^ {2}COFFER_CONFIG /m);
  assert.doesNotMatch(ok(['find', '--help']).stdout, /default: \[\]/, 'a repeatable option that starts empty shows no default');
});

test('help NAME is NAME --help, and a mistyped name is one line', () => {
  const { version } = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(ok(['--version']).stdout, `${version}\n`, 'the fast path that skips commander');
  assert.equal(ok(['-V']).stdout, `${version}\n`);
  assert.match(ok(['help', 'key', 'add']).stdout, /^Usage: coffer key add /);
  const typo = coffer(['help', 'snapshot']);
  assert.equal(typo.code, 1);
  assert.equal(typo.stderr, "coffer: unknown command 'snapshot' (Did you mean snapshots?); see coffer --help\n");
  const choice = coffer(['stats', '--mode', 'size']);
  assert.equal(choice.code, 1);
  assert.match(choice.stderr, /^coffer: option '--mode <mode>' argument 'size' is invalid\. Allowed choices are restore-size, .*blobs-per-file; see coffer stats --help\n$/);
});
