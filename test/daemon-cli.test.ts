// The daemon seen from the CLI: coffer daemon status and jobs --json, SIGHUP, one daemon per data
// directory, a control socket no other user of the machine can reach, and the unit daemon install writes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, ok, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';

function setup(t: import('node:test').TestContext): { repo: string; source: string } {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'a');
  ok(['init', '--repo', repo]);
  return { repo, source };
}

test('coffer jobs --json and daemon status; SIGHUP reloads; a second daemon on the same data directory is refused; not running says so', async (t) => {
  const { repo, source } = setup(t);
  const daemon = await DaemonProcess.start(t, { config: `plans:\n  docs:\n    repos: [${repo}]\n    paths: [${source}]\n    schedule: "0 3 * * *"\n` });
  const status = daemon.cli(['daemon', 'status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^running: pid \d+, coffer [\d.]+, up/);
  assert.match(status.stdout, /plan docs: next run \d{4}-\d\d-\d\d 03:00:00$/m, 'in local time, as the schedule');
  const json = JSON.parse(daemon.cli(['jobs', '--json']).stdout);
  assert.equal(json.type, 'daemon-status');
  assert.deepEqual(json.jobs, []);
  assert.match(daemon.cli(['jobs', '--once']).stdout, /no jobs; next: plan docs at/);
  // SIGHUP reloads the configuration; a file with a problem is refused and the old one kept.
  fs.appendFileSync(daemon.configFile, `  more:\n    repos: [${repo}]\n    paths: [${source}]\n    schedule: "0 4 * * *"\n`);
  daemon.signal('SIGHUP');
  await daemon.waitFor(/configuration reloaded: 2 plans/);
  assert.deepEqual((await daemon.status()).schedules.map((s) => s.plan).sort(), ['docs', 'more']);
  fs.appendFileSync(daemon.configFile, '    shedule: typo\n');
  daemon.signal('SIGHUP');
  await daemon.waitFor(/configuration not reloaded, the old one stays in use: .*config\.yaml line \d+: plans\.more\.shedule: unknown field "shedule"/);
  assert.equal((await daemon.status()).schedules.length, 2);
  const second = coffer(['daemon'], { env: { COFFER_DATA_DIR: daemon.dataDir, COFFER_CONFIG: daemon.configFile } });
  assert.equal(second.code, 1);
  assert.match(second.stderr, /^coffer: a daemon is already running for .*; see coffer daemon status\n$/);
  assert.equal((await daemon.stop()).code, 0);
  const down = daemon.cli(['daemon', 'status']);
  assert.equal(down.code, 3);
  assert.match(down.stdout, /^not running: the daemon is not running for/);
  const jobs = daemon.cli(['jobs']);
  assert.equal(jobs.code, 1);
  assert.match(jobs.stderr, /^coffer: the daemon is not running for .*; start it with coffer daemon\n$/);
});

test('no other user of the machine can reach the control socket', async (t) => {
  const { repo, source } = setup(t);
  const daemon = await DaemonProcess.start(t, { config: `plans:\n  docs:\n    repos: [${repo}]\n    paths: [${source}]\n` });
  const socket = path.join(daemon.dataDir, 'daemon', 'control.sock');
  assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700);
  assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
  // Open the way down to the daemon's directory, so that only its own modes stand in the way.
  for (let dir = path.dirname(path.dirname(socket)); dir !== '/'; dir = path.dirname(dir)) fs.chmodSync(dir, fs.statSync(dir).mode | 0o055);
  const connect = `require('net').connect(${JSON.stringify(socket)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(1); })`;
  const asNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/node', '-e', connect], { encoding: 'utf8' });
  assert.equal(asNobody.stdout.trim(), 'EACCES', asNobody.stderr);
  // The same call as the daemon's user connects.
  assert.equal(spawnSync('/usr/bin/node', ['-e', connect], { encoding: 'utf8' }).stdout.trim(), 'connected');
  await daemon.stop();
});

test('daemon install writes a systemd unit that runs the daemon with this configuration, and says how to enable it', (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'my config.yaml');
  fs.writeFileSync(config, `plans:\n  docs:\n    repos: [${dir}/repo]\n    paths: [${dir}]\n    passwordFile: ${dir}/pw\n  nopass:\n    repos: [${dir}/repo]\n    paths: [${dir}]\n`);
  const env = { XDG_CONFIG_HOME: path.join(dir, 'xdg'), COFFER_CONFIG: config, COFFER_DATA_DIR: path.join(dir, 'data') };
  const r = coffer(['daemon', 'install', '--user'], { env });
  assert.equal(r.code, 0, r.stderr);
  const unitFile = path.join(dir, 'xdg', 'systemd', 'user', 'coffer.service');
  assert.match(r.stdout, new RegExp(`^wrote ${unitFile}\\n`));
  assert.match(r.stdout, /systemctl --user daemon-reload && systemctl --user enable --now coffer/);
  assert.match(r.stdout, /loginctl enable-linger/);
  assert.match(r.stderr, /plans nopass have no passwordFile or passwordCommand/);
  const unit = fs.readFileSync(unitFile, 'utf8');
  assert.match(unit, /^\[Unit\]$/m);
  assert.match(unit, /^Environment="MALLOC_ARENA_MAX=2"$/m);
  assert.match(unit, new RegExp(`^ExecStart="${process.execPath}" "--max-semi-space-size=\\d+" "[^"]+/(main\\.ts|coffer\\.js)" "daemon" "--config" "${config}" "--data-dir" "${dir}/data"$`, 'm'));
  assert.match(unit, /^KillSignal=SIGTERM$/m);
  assert.match(unit, /^Restart=on-failure$/m);
  assert.match(unit, /^WantedBy=default\.target$/m);
  assert.doesNotMatch(unit, /PASSWORD|correct horse/i, 'no secret in the unit');
  const again = coffer(['daemon', 'install', '--user'], { env });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /coffer\.service exists; add --force to replace it/);
  const system = coffer(['daemon', 'install', '--system', '--unit-dir', path.join(dir, 'system')], { env });
  assert.equal(system.code, 0, system.stderr);
  assert.match(system.stdout, /systemctl daemon-reload && systemctl enable --now coffer/);
  assert.match(fs.readFileSync(path.join(dir, 'system', 'coffer.service'), 'utf8'), /^WantedBy=multi-user\.target$/m);
  assert.match(coffer(['daemon', 'install', '--user', '--system'], { env }).stderr, /give --user or --system, not both/);
});
