// Controlling a running `coffer daemon` from the CLI: pause, resume and cancel a job or everything, and
// run a plan now; mistakes get one line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ok, tempDir } from './helpers/cli.ts';
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
  // A stream's length is known at its end: no percentage while it is read (the bar is dotted).
  assert.match(panel.stdout, new RegExp(`⏸ +${job} slow +\\[(·+\\] +|[█░]+\\] +\\d+% )paused [\\d.]+ \\S*B`));
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
