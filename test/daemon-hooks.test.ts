// Hooks: before, after, on success and on failure, with the job's details in the environment, never
// the passphrase, each under a time limit; a failing before-hook fails the run clearly and runs the
// failure hook (and after).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HookError, runHook } from '../src/daemon/hooks.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';

const context = { plan: 'db', jobId: 7, run: 2, repos: ['s3:https://key:secret@s3.example.com/b'], status: 'failed', error: 'disk full' };

test('a hook sees the job in COFFER_* variables and not the secrets of the daemon', async (t) => {
  const out = path.join(tempDir(t), 'env');
  process.env.COFFER_PASSWORD = 'hunter2';
  try {
    await runHook('onFailure', { command: `env > ${out}` }, context);
  } finally {
    delete process.env.COFFER_PASSWORD;
  }
  const env = fs.readFileSync(out, 'utf8');
  for (const line of ['COFFER_HOOK=onFailure', 'COFFER_PLAN=db', 'COFFER_JOB_ID=7', 'COFFER_RUN=2', 'COFFER_STATUS=failed', 'COFFER_ERROR=disk full']) assert.match(env, new RegExp(`^${line}$`, 'm'));
  assert.doesNotMatch(env, /hunter2|key:secret/);
});

test('a hook that fails or runs too long is stopped and named, with the last line it wrote', async () => {
  await assert.rejects(runHook('before', { command: 'echo starting; echo "database is not ready" >&2; exit 4' }, context), (e: Error) => e instanceof HookError && e.message === 'the before hook failed (exit 4): database is not ready');
  const started = Date.now();
  await assert.rejects(runHook('before', { command: 'sleep 30 & sleep 30', timeout: '1s' }, context), /the before hook was stopped: it ran longer than its time limit of 1 s/);
  assert.ok(Date.now() - started < 10_000);
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 200);
  await assert.rejects(runHook('after', { command: 'sleep 30' }, context, { signal: abort.signal }), /the after hook was stopped: the job was stopped/);
});

test('the daemon runs before, onSuccess, onFailure and after around its runs; a failing before-hook fails the run', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  const trail = path.join(dir, 'trail');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a'), 'a');
  ok(['init', '--repo', repo]);
  const note = (hook: string) => `echo "${hook} $COFFER_PLAN $COFFER_JOB_ID \${COFFER_STATUS:-} \${COFFER_SNAPSHOT_ID:+snapshot}" >> ${trail}`;
  const hooks = (before: string) => `    hooks:\n      before: '${before}'\n      onSuccess: '${note('onSuccess')}'\n      onFailure: '${note('onFailure')}'\n      after: '${note('after')}'\n`;
  const daemon = await DaemonProcess.start(t, {
    config:
      `plans:\n  good:\n    repos: [${repo}]\n    paths: [${source}]\n${hooks(note('before'))}` +
      `  bad:\n    repos: [${repo}]\n    paths: [${source}]\n${hooks('echo "the database is down" >&2; exit 2')}` +
      'retries: { max: 0 }\n',
  });
  await daemon.run('good');
  await daemon.waitFor(/\(plan good\) completed/);
  await daemon.run('bad');
  const failed = await daemon.waitFor(/job (\d+) \(plan bad\) failed: (.*); no retries left/);
  assert.equal(failed[2], 'the before hook failed (exit 2): the database is down');
  await daemon.waitFor(/no retries left/);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const lines = fs.readFileSync(trail, 'utf8').trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' ').slice(0, 2).join(' ')), ['before good', 'onSuccess good', 'after good', 'onFailure bad', 'after bad']);
  assert.match(lines[1]!, /^onSuccess good \d+ completed snapshot$/);
  assert.match(lines[3]!, /^onFailure bad \d+ failed $/);
  const jobs = (await daemon.status()).jobs;
  assert.equal(jobs.find((j) => j.plan === 'bad')?.state, 'failed');
  await daemon.stop();
});
