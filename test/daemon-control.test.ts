// Controlling a running `coffer daemon` from the CLI: coffer jobs, pause, resume, cancel and run, over a
// control socket no other user can reach; coffer daemon status; coffer daemon install writes a unit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, ok, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';

/** A plan whose only source is a command that prints 8 MB over about 4 s: a run long enough to steer. */
function slowPlan(name: string, repo: string, extra = ''): string {
  const command = 'for i in $(seq 1 40); do head -c 200000 /dev/urandom; sleep 0.1; done';
  return `  ${name}:\n    repos: [${repo}]\n    paths: []\n    sources: [{ type: command, command: '${command}', filename: ${name}.bin }]\n${extra}`;
}

function setup(t: import('node:test').TestContext): { repo: string; source: string } {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'a');
  ok(['init', '--repo', repo]);
  return { repo, source };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('pause, resume and cancel a running job, pause and resume everything, from the CLI', async (t) => {
  const { repo, source } = setup(t);
  const daemon = await DaemonProcess.start(t, {
    config: `plans:\n${slowPlan('slow', repo)}  small:\n    repos: [${repo}]\n    paths: [${source}]\n`,
  });
  const queued = daemon.cli(['run', 'slow']);
  assert.equal(queued.code, 0, queued.stderr);
  const job = Number(/queued as job (\d+)/.exec(queued.stdout)![1]);
  await daemon.until((s) => (s.jobs.find((j) => j.id === job)?.bytesDone ?? 0) > 0);

  const paused = daemon.cli(['pause', String(job)]);
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, new RegExp(`job ${job} pauses after its current pack`));
  await daemon.until((s) => s.jobs.find((j) => j.id === job)?.state === 'paused');
  await sleep(600);
  const still = (await daemon.job(job))!.bytesDone;
  await sleep(1500);
  assert.equal((await daemon.job(job))!.bytesDone, still, 'nothing is read while paused');
  const panel = daemon.cli(['jobs', '--once']);
  // A stream's length is known at its end: no percentage while it is read.
  assert.match(panel.stdout, new RegExp(`⏸ +${job} slow +\\[·+\\] +paused [\\d.]+ [KM]iB 0 files\\n`));
  const db = JSON.parse(daemon.cli(['status', '--json']).stdout) as { live: { job: { id: number; status: string } }[] };
  assert.equal(db.live.find((l) => l.job.id === job)?.job.status, 'paused', 'the job database says paused too (and the heartbeat goes on)');

  assert.equal(daemon.cli(['resume', String(job)]).code, 0);
  await daemon.waitFor(new RegExp(`job ${job} \\(plan slow\\) completed`));

  // Everything paused: a job queued meanwhile waits until everything resumes.
  assert.match(daemon.cli(['pause', '--all']).stdout, /paused everything/);
  const small = await daemon.run('small');
  await sleep(1000);
  assert.equal((await daemon.job(small))?.state, 'queued');
  assert.match(daemon.cli(['jobs', '--once']).stdout, /EVERYTHING PAUSED/);
  assert.equal(daemon.cli(['resume', '--all']).code, 0);
  await daemon.waitFor(new RegExp(`job ${small} \\(plan small\\) completed`));

  // Cancel a running job: it stops, the dump with it, and no snapshot is made.
  const snapshots = (): number => fs.readdirSync(path.join(repo, 'snapshots')).length;
  const snapshotsBefore = snapshots();
  const again = await daemon.run('slow');
  await daemon.until((s) => (s.jobs.find((j) => j.id === again)?.bytesDone ?? 0) > 0);
  const cancelled = daemon.cli(['cancel', String(again)]);
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.match(cancelled.stdout, /checkpoints and stops/);
  await daemon.until((s) => s.jobs.find((j) => j.id === again)?.state === 'cancelled', 30_000);
  assert.equal(snapshots(), snapshotsBefore);
  assert.equal(spawnSync('pgrep', ['-f', 'seq 1 40']).status, 1, 'the dump command is gone');

  // Cancel a queued job: it leaves the queue and never runs.
  daemon.cli(['pause', '--all']);
  const waiting = await daemon.run('small');
  assert.match(daemon.cli(['cancel', String(waiting)]).stdout, new RegExp(`job ${waiting} left the queue`));
  daemon.cli(['resume', '--all']);
  await sleep(800);
  assert.equal((await daemon.job(waiting))?.state, 'cancelled');

  // Mistakes get one line and a non-zero exit.
  for (const [args, message] of [
    [['cancel', '999'], /^coffer: no job 999; coffer jobs lists them\n$/],
    [['pause'], /^coffer: say which job \(coffer pause 12\) or --all/],
    [['pause', 'x1'], /^coffer: "x1" is not a job id/],
    [['pause', '3', '--all'], /^coffer: give a job or --all, not both/],
    [['run', 'nope'], /^coffer: no plan "nope" in .*\(plans: slow, small\)\n$/],
    [['cancel', String(small)], new RegExp(`^coffer: job ${small} is completed; only queued and running jobs can be cancelled`)],
  ] as const) {
    const r = daemon.cli([...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, message);
  }
  assert.equal((await daemon.stop()).code, 0);
});

test('coffer jobs --json and daemon status; SIGHUP reloads; a second daemon on the same data directory is refused; not running says so', async (t) => {
  const { repo, source } = setup(t);
  const daemon = await DaemonProcess.start(t, { config: `plans:\n  docs:\n    repos: [${repo}]\n    paths: [${source}]\n    schedule: "0 3 * * *"\n` });
  const status = daemon.cli(['daemon', 'status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^running: pid \d+, coffer [\d.]+, up/);
  assert.match(status.stdout, /plan docs: next run \d{4}-\d\d-\d\dT03:00/);
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
  assert.match(unit, new RegExp(`^ExecStart="${process.execPath}" "[^"]+/(main\\.ts|coffer\\.js)" "daemon" "--config" "${config}" "--data-dir" "${dir}/data"$`, 'm'));
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
