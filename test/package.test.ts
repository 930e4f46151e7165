// Installed as users install CLIs: the `npm pack` tarball (compiled JavaScript, built on prepack)
// installed with `npm install -g` gives a working `coffer`, even where the system's Node is older.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NODE_FLAGS } from '../src/node-flags.ts';
import { CONFIG_FILE, DATA_DIR, HEAVY, PASSWORD, REPO_ROOT, runningCommandLine, tempDir } from './helpers/cli.ts';

// The install builds zstd-napi with node-gyp (about a minute), hence the long timeout.
test('npm pack, npm install -g, and a backup and restore with the installed coffer', { timeout: 600_000, ...HEAVY }, (t) => {
  const dir = tempDir(t);
  // npm itself runs on the system Node here, as it would on a user's machine.
  const systemPath = ['/usr/local/bin', '/usr/bin', '/bin'].join(':');
  const npmEnv = { ...process.env, PATH: systemPath };
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: REPO_ROOT, env: npmEnv, encoding: 'utf8' }).trim().split('\n').pop()!;
  const tarball = path.join(dir, packed);
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  assert.match(listing, /package\/dist\/cli\/main\.js/);
  assert.match(listing, /package\/dist\/engine\/backup\/chunk-worker\.js/);
  assert.doesNotMatch(listing, /package\/src\/|package\/test\//, 'TypeScript sources and tests are not shipped');
  assert.match(listing, /package\/web\/dist\/index\.html/, 'the dashboard ships built');
  assert.doesNotMatch(listing, /package\/web\/src\//, 'its sources do not');

  const prefix = path.join(dir, 'prefix');
  execFileSync('npm', ['install', '-g', '--silent', '--no-audit', '--no-fund', '--prefix', prefix, tarball], { env: npmEnv, stdio: 'pipe' });
  const bin = path.join(prefix, 'bin/coffer');
  const env = { ...process.env, PATH: systemPath, COFFER_PASSWORD: PASSWORD, COFFER_DATA_DIR: DATA_DIR, COFFER_CONFIG: CONFIG_FILE };
  const run = (...args: string[]): string => {
    const r = spawnSync(bin, args, { env, encoding: 'utf8' });
    assert.equal(r.status, 0, `coffer ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  assert.equal(run('--version').trim(), JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version);
  // The shebang's flags reach the Node that runs coffer (on an older system Node, the bundled Node 24).
  const argv = runningCommandLine(t, bin, systemPath);
  assert.deepEqual(argv.slice(1, 1 + NODE_FLAGS.length), NODE_FLAGS, argv.join(' '));
  const repo = path.join(dir, 'repo');
  const source = path.join(REPO_ROOT, 'docs');
  run('init', '--repo', repo);
  assert.match(run('backup', '--repo', repo, source), /snapshot [0-9a-f]{8} saved/);
  run('restore', '--repo', repo, 'latest', '--target', path.join(dir, 'out'));
  assert.equal(fs.readFileSync(path.join(dir, 'out', source, 'FORMAT.md'), 'utf8'), fs.readFileSync(path.join(source, 'FORMAT.md'), 'utf8'));
  // The agent's systemd unit starts the program that is installed (it named dist/cli/main.ts, which is not).
  const unitFile = path.join(dir, 'coffer-agent.service');
  run('agent', 'install', '--server', 'https://backup.example.com', '--key', 'cof_abcdefghijklmnopqrstuvwxyz', '--key-file', path.join(dir, 'agent.key'), '--password-file', '/etc/coffer/pass', '--unit-file', unitFile);
  const program = /^ExecStart="[^"]*" (?:"--[^"]*" )*"([^"]*)" "agent"/m.exec(fs.readFileSync(unitFile, 'utf8'))?.[1];
  assert.equal(program, fs.realpathSync(bin));
});
