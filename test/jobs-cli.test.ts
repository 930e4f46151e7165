// Jobs through the command line, on real files and the real SQLite database: one live run per plan,
// kill -9 and resume, retries, status, logs, reset, the setup wizard and doctor.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { coffer, cofferAsync, ok, summaryOf, tempDir } from './helpers/cli.ts';
import { seededBytes } from './helpers/tree.ts';
import { resizeDisk, smallDisk } from './helpers/small-disk.ts';

function source(dir: string, files: number, size: number): string {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(src, `f${i}`), seededBytes(`jobs ${dir} ${i}`, size));
  return src;
}

/** A data directory and configuration of the test's own. */
function state(dir: string, config?: unknown): Record<string, string> {
  const configFile = path.join(dir, 'config.yaml');
  if (config) fs.writeFileSync(configFile, YAML.stringify(config));
  return { COFFER_DATA_DIR: path.join(dir, 'data'), COFFER_CONFIG: configFile };
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a live run blocks a second one of the same plan; after kill -9 the next run resumes the same job', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const env = state(dir);
  const src = source(dir, 6, 4 << 20);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo], { env });
  // Slow enough (about 50 s for 24 MiB) that four CLI calls on a loaded machine still see it running.
  const slow = ['backup', '--repo', repo, '--limit-upload', '512K', src];
  const first = cofferAsync(slow, { env });
  await until(() => /running:\n {2}job 1 /.test(coffer(['status'], { env }).stdout), 'the first run to show in status');

  const second = coffer(['backup', '--repo', repo, src], { env });
  assert.equal(second.code, 1);
  assert.match(second.stderr, new RegExp(`^coffer: plan src-[0-9a-f]{8} is already running as job 1 \\(pid ${first.child.pid}, heartbeat \\d+s ago\\); its process is alive on this host`));
  assert.match(coffer(['backup', '--repo', repo, '--force', src], { env }).stderr, /already running/, 'a live process on this host is never taken over');
  const live = coffer(['status', '--json'], { env });
  const report = JSON.parse(live.stdout) as { live: { job: { id: number; status: string; bytesTotal: number } }[] };
  assert.equal(report.live[0]!.job.status, 'running');

  first.child.kill('SIGKILL');
  await first.done;
  const after = ok(['status'], { env }).stdout;
  assert.match(after, /job 1 \(plan src-[0-9a-f]{8}\) interrupted: stale: process \d+ is gone/);

  const resumed = ok(['backup', '--repo', repo, '--json', src], { env });
  assert.match(resumed.stdout, /"snapshotId"/);
  const report2 = JSON.parse(ok(['status', '--json'], { env }).stdout) as { destinations: { lastSuccess?: { jobId: number } }[]; problems: unknown[] };
  assert.equal(report2.destinations[0]!.lastSuccess!.jobId, 1, 'the interrupted job itself completed');
  assert.deepEqual(report2.problems, []);
  const log = ok(['logs', '1'], { env }).stdout;
  assert.match(log, /job 1 run 1: job started/);
  assert.match(log, /job 1 run 2: job resumed/);
  assert.match(log, /backup completed/);
  assert.doesNotMatch(log + fs.readdirSync(path.join(dir, 'data/logs')).join(), /correct horse/, 'no passphrase in logs');

  const cleared = ok(['status', '--reset'], { env }).stdout;
  assert.match(cleared, /cleared 1 job; repositories are untouched/);
  assert.match(ok(['status'], { env }).stdout, /no backup has run|no successful backup yet/);
  assert.match(ok(['snapshots', '--repo', repo], { env }).stdout, /^1 snapshot$/m);
});

test('a failure is retried after the configured delay and each attempt is kept; a hopeless one is not retried', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const env = state(dir, { retries: { max: 2, delays: [1], networkDelays: [1] } });
  const mount = smallDisk(t, '4m');
  if (!mount) return;
  const src = source(dir, 3, 4 << 20);
  const repo = path.join(mount, 'repo');
  ok(['init', '--repo', repo], { env });

  // Two attempts fail on a full disk; the disk grows before the third.
  const run = cofferAsync(['backup', '--repo', repo, src], { env });
  await until(() => (run.output().stderr.match(/retrying in/g) ?? []).length >= 2, 'two retries');
  assert.ok(resizeDisk(mount, '64m'));
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /attempt 1 failed: .*no space left on device.*; retrying in 0:01/);
  const jobs = JSON.parse(ok(['status', '--json'], { env }).stdout) as { destinations: { lastSuccess?: { jobId: number } }[] };
  assert.equal(jobs.destinations[0]!.lastSuccess!.jobId, 1);
  const log = ok(['logs'], { env }).stdout;
  assert.equal((log.match(/backup failed/g) ?? []).length, 2);

  // Over the limit, the job stays failed and status says why, attempt by attempt.
  const disk = fs.statfsSync(mount);
  const used = (disk.blocks - disk.bfree) * disk.bsize;
  assert.ok(resizeDisk(mount, used + 256 * 1024));
  fs.writeFileSync(path.join(src, 'more'), seededBytes('more', 3 << 20));
  const failing = coffer(['backup', '--repo', repo, src], { env });
  assert.equal(failing.code, 1);
  assert.equal((failing.stderr.match(/retrying in/g) ?? []).length, 2);
  const status = ok(['status'], { env }).stdout;
  assert.match(status, /job 2 \(plan src-[0-9a-f]{8}\) failed: .*no space left on device/);
  assert.equal((status.match(/attempt \d \(.*\): .*no space/g) ?? []).length, 3);

  // A wrong passphrase does not get better by waiting: no retry.
  const wrong = coffer(['backup', '--repo', repo, src], { env: { ...env, COFFER_PASSWORD: 'nope' } });
  assert.equal(wrong.code, 12);
  assert.doesNotMatch(wrong.stderr, /retrying/);
  assert.match(wrong.stderr, /wrong passphrase/);
});

test('the setup wizard, driven through its prompts, writes a plan that backup --plan and doctor use', { timeout: 60_000 }, (t) => {
  const dir = tempDir(t);
  const env = state(dir);
  const src = source(dir, 2, 100_000);
  const a = path.join(dir, 'ssd');
  const b = path.join(dir, 'nas');
  const blocked = path.join(dir, 'plain-file');
  fs.writeFileSync(blocked, '');
  const passFile = path.join(dir, 'secret');
  const answers = ['photos', src, path.join(dir, 'missing'), '', path.join(blocked, 'repo'), a, b, '', '4', '2', passFile, 'y', 'y', ''].join('\n');
  const r = coffer(['setup'], { env: { ...env, COFFER_PASSWORD: undefined }, input: answers });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /missing does not exist/);
  assert.match(r.stdout, /test-write failed: .*try another destination/);
  assert.match(r.stdout, /answer 1, 2 or 3/);
  assert.match(r.stdout, /wrote a new passphrase to .*secret/);
  assert.match(r.stdout, /created repository [0-9a-f]{8}/);
  assert.match(r.stdout, /saved plan photos to .*config\.yaml; run it with: coffer backup --plan photos/);
  assert.equal(fs.statSync(passFile).mode & 0o777, 0o600);
  const config = YAML.parse(fs.readFileSync(env.COFFER_CONFIG!, 'utf8'));
  assert.deepEqual(config.plans.photos.repos, [a, b]);
  assert.equal(config.plans.photos.passwordFile, passFile);
  assert.doesNotMatch(fs.readFileSync(env.COFFER_CONFIG!, 'utf8'), new RegExp(fs.readFileSync(passFile, 'utf8').trim()), 'the passphrase is not in the configuration');

  const noEnv = { ...env, COFFER_PASSWORD: undefined };
  const summary = summaryOf(ok(['backup', '--plan', 'photos', '--json'], { env: noEnv }).stdout);
  assert.equal((summary.destinations as unknown[]).length, 2);
  const doctor = ok(['doctor', '--plan', 'photos'], { env: noEnv }).stdout;
  assert.match(doctor, /^ok {4}config: .*1 plan \(photos\)/m);
  assert.match(doctor, /^ok {4}data directory: /m);
  assert.match(doctor, /^ok {4}passphrase: from the plan's passwordFile .*it opens the repository/m);

  fs.writeFileSync(env.COFFER_CONFIG!, 'plans:\n  photos:\n    repos: nope\n');
  const broken = coffer(['doctor'], { env: noEnv });
  assert.equal(broken.code, 1);
  assert.match(broken.stdout, /^FAIL {2}config: .*config\.yaml line \d+: plans\.photos\.repos: /m);
  assert.match(coffer(['backup', '--plan', 'photos'], { env: noEnv }).stderr, /^coffer: .*config\.yaml line \d+: plans\.photos\.repos/);
});

test('setup with an existing repository checks the passphrase and copies the repository to a new destination', { timeout: 60_000 }, (t) => {
  const dir = tempDir(t);
  const env = state(dir);
  const src = source(dir, 1, 50_000);
  const existing = path.join(dir, 'existing');
  ok(['init', '--repo', existing], { env });
  ok(['backup', '--repo', existing, src], { env });
  const fresh = path.join(dir, 'fresh');
  const answers = ['home', src, '', existing, fresh, '', '1', ''].join('\n');
  const r = coffer(['setup'], { env, input: answers });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /copying the repository to .*fresh/);
  assert.match(ok(['check', '--replicas', '--repo', existing, '--repo', fresh], { env }).stdout, /all 2 replicas hold the same/);
  const wrong = coffer(['setup'], { env: { ...env, COFFER_PASSWORD: 'not the one' }, input: ['other', src, '', existing, '', '1', ''].join('\n') });
  assert.equal(wrong.code, 12);
  assert.match(wrong.stderr, /wrong passphrase/);
});
