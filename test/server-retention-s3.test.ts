// A plan's retention on the server's own S3 destinations (write-only for agents) is applied by the
// server when the plan's owner gave it the repository's passphrase: after each completed backup, with
// the server's credentials under the user's prefix, as a task on the server's queue. Real components:
// s3rver, a real agent process backing up through pre-signed URLs, the server on SQLite (and on a real
// PostgreSQL with two servers, where it runs once). The passphrase is write-only: never in an API
// answer, the server's log or the event stream, and another user cannot read, set or clear it.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { SQLITE_FILE } from '../src/server/db/open.ts';
import { Repository } from '../src/repo/repository.ts';
import { observeWriters } from '../src/repo/writer-markers.ts';
import { open } from '../src/server/storage/secret-box.ts';
import { S3Store } from '../src/store/s3.ts';
import { startAgent, until } from './helpers/agent.ts';
import { jsonLines, ok } from './helpers/cli.ts';
import { postgresAvailable, startPostgres, type PostgresServer } from './helpers/postgres.ts';
import { Client, startAgentFleet, startTestServer, type AgentFleet, type TestServer } from './helpers/server.ts';

/** The repository passphrase the agent uses, distinctive enough to search logs for. */
const PASSPHRASE = 'plum-otter-quartz-7f3a-passphrase';

interface JobView {
  readonly status: string;
  readonly error: string | null;
  readonly snapshotId: string | null;
  readonly retention: { forgotten: number; pruned: boolean; error?: string } | null;
  readonly serverRetention: 'due' | { forgotten: number; pruned: boolean; freedBytes?: number; error?: string } | null;
}

interface Setup {
  readonly fleet: AgentFleet;
  readonly alice: Client;
  readonly agentId: string;
  readonly dir: string;
  readonly logFile: string;
}

/** `keepDataDir`: the server's data directory outlives it (in the test's folder), so a test can start it again. */
async function setUp(options: { databaseUrl?: string; keepDataDir?: boolean } = {}): Promise<Setup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-server-retention-'));
  const logFile = path.join(dir, 'server.log');
  // Everything the server logs, at the most detailed level, goes to a file the tests search.
  const fleet = await startAgentFleet({ ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}), ...(options.keepDataDir ? { dataDir: path.join(dir, 'server') } : {}), log: pino({ level: 'trace' }, pino.destination({ dest: logFile, sync: true })) });
  fleet.dirs.push(dir);
  const agent = startAgent({ server: fleet.server.url, key: fleet.key, dir: path.join(dir, 'agent'), env: { COFFER_PASSWORD: PASSPHRASE } });
  fleet.agents.push(agent);
  const agentId = (await until('the agent to register', async () => (await fleet.alice.json<{ id: string; status: string }[]>('GET', '/api/agents')).find((a) => a.status === 'online'))).id;
  return { fleet, alice: fleet.alice, agentId, dir, logFile };
}

/** Runs the plan and waits until the job is completed and the server's retention (if any) has run. */
async function runToEnd(s: Setup, planId: string): Promise<{ job: JobView; log: string[] }> {
  const { id } = await s.alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
  const job = await until(`job ${id} and its retention to finish`, async () => {
    const j = await s.alice.json<JobView>('GET', `/api/jobs/${id}`);
    return ['failed', 'cancelled'].includes(j.status) || (j.status === 'completed' && j.serverRetention !== 'due') ? j : undefined;
  }, 90_000);
  assert.equal(job.status, 'completed', job.error ?? s.fleet.agents[0]!.output());
  const log = await s.alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${id}/log`);
  return { job, log: log.lines.map((l) => l.message) };
}

/** The CLI's view of Alice's repository in the bucket, read with the storage credentials (an admin's CLI). */
function bucketSnapshots(s: Setup, passphrase = PASSPHRASE): { id: string; paths: string[] }[] {
  const { s3 } = s.fleet;
  const repo = `s3:${s3.endpoint}/${s3.bucket}/fleet/users/${s.alice.userId}`;
  const env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, COFFER_PASSWORD: passphrase };
  return jsonLines<{ id: string; paths: string[] }>(ok(['snapshots', '--repo', repo, '--json'], { env }).stdout);
}

function aliceStore(s: Setup): S3Store {
  const { s3 } = s.fleet;
  return new S3Store(`s3:${s3.endpoint}/${s3.bucket}/fleet/users/${s.alice.userId}`, { env: { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey } });
}

function source(s: Setup, name: string): string {
  const dir = path.join(s.dir, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** New data for each run, so that what a forgotten snapshot held is unused afterwards. */
function change(dir: string): void {
  fs.writeFileSync(path.join(dir, 'current.raw'), crypto.randomBytes(200_000));
}

async function openAlerts(s: Setup, planId: string) {
  return (await s.alice.json<{ kind: string; subjectId: string; message: string; resolvedAt: number | null }[]>('GET', '/api/alerts')).filter((a) => a.kind === 'retention-failed' && a.subjectId === planId && a.resolvedAt === null);
}

describe('the server applies retention on its S3 destinations (SQLite)', () => {
  let s: Setup;
  let bob: Client;
  let planId: string;
  let photos: string;

  before(async () => {
    s = await setUp();
    await s.alice.json('PUT', '/api/admin/settings', { signup: 'open' });
    bob = await new Client(s.fleet.server.app).signup('bob@example.com');
    photos = source(s, 'photos');
    planId = (await s.alice.json<{ id: string }>('POST', '/api/plans', { name: 'photos', agentId: s.agentId, paths: [photos], destinations: [s.fleet.destinationId], retention: { keepLast: 1 }, pruneEvery: 2 }, 201)).id;
  });

  after(async () => {
    await s?.fleet.close();
  });

  test('the passphrase is write-only, sealed at rest, cleared by an empty value, and only its owner reaches it', async () => {
    assert.equal((await s.alice.json<{ hasPassphrase: boolean }>('GET', `/api/plans/${planId}`)).hasPassphrase, false);
    assert.match((await s.alice.request('PUT', `/api/plans/${planId}/passphrase`, {})).json().error, /passphrase/);
    const set = await s.alice.request('PUT', `/api/plans/${planId}/passphrase`, { passphrase: PASSPHRASE });
    assert.equal(set.statusCode, 200);
    assert.deepEqual(set.json(), { hasPassphrase: true });
    const row = await s.fleet.server.ctx.db.selectFrom('plans').select('passphrase').where('id', '=', planId).executeTakeFirstOrThrow();
    assert.ok(row.passphrase && !row.passphrase.includes(PASSPHRASE), 'sealed in the database');
    assert.equal(open(s.fleet.server.ctx.secret, row.passphrase), PASSPHRASE);
    assert.equal((await s.alice.json<{ hasPassphrase: boolean }>('GET', `/api/plans/${planId}`)).hasPassphrase, true);
    assert.deepEqual(await s.alice.json('PUT', `/api/plans/${planId}/passphrase`, { passphrase: '' }), { hasPassphrase: false });
    assert.equal((await s.fleet.server.ctx.db.selectFrom('plans').select('passphrase').where('id', '=', planId).executeTakeFirstOrThrow()).passphrase, null);
    // Bob can neither read, set nor clear it: Alice's plan is not found for him.
    await s.alice.json('PUT', `/api/plans/${planId}/passphrase`, { passphrase: PASSPHRASE });
    assert.equal((await bob.request('GET', `/api/plans/${planId}`)).statusCode, 404);
    assert.equal((await bob.request('PUT', `/api/plans/${planId}/passphrase`, { passphrase: 'bobs own' })).statusCode, 404);
    assert.equal((await bob.request('PUT', `/api/plans/${planId}/passphrase`, { passphrase: '' })).statusCode, 404);
    assert.equal((await s.alice.json<{ hasPassphrase: boolean }>('GET', `/api/plans/${planId}`)).hasPassphrase, true);
    assert.equal(open(s.fleet.server.ctx.secret, (await s.fleet.server.ctx.db.selectFrom('plans').select('passphrase').where('id', '=', planId).executeTakeFirstOrThrow()).passphrase!), PASSPHRASE);
  });

  test("after each run the server forgets the plan's older snapshots in the bucket, and prunes every pruneEvery-th run", async () => {
    change(photos);
    const first = await runToEnd(s, planId);
    assert.deepEqual(first.job.serverRetention, { forgotten: 0, pruned: false });
    assert.equal(first.job.retention, null, 'the agent has no destination of its own here');
    assert.ok(first.log.some((l) => /^retention on bucket is applied by the server, which holds the plan's passphrase/.test(l)), first.log.join('\n'));
    assert.ok(first.log.includes("retention on the server's destinations forgot 0 snapshots"), first.log.join('\n'));
    change(photos);
    const second = await runToEnd(s, planId);
    const report = second.job.serverRetention as { forgotten: number; pruned: boolean };
    assert.equal(report.forgotten, 1, second.log.join('\n'));
    assert.equal(report.pruned, true, 'the second run is the pruneEvery-th');
    assert.ok(second.log.some((l) => /^retention on the server's destinations forgot 1 snapshot, prune freed \d+ bytes$/.test(l)), second.log.join('\n'));
    const left = bucketSnapshots(s).filter((x) => x.paths.includes(photos));
    assert.deepEqual(left.map((x) => x.id), [second.job.snapshotId], 'the bucket keeps the last one');
    assert.deepEqual(await openAlerts(s, planId), []);
  });

  test('a wrong passphrase: one clear line, an alert, nothing deleted; the right one resolves the alert', async () => {
    await s.alice.json('PUT', `/api/plans/${planId}/passphrase`, { passphrase: 'not the passphrase at all' });
    change(photos);
    const { job, log } = await runToEnd(s, planId);
    const report = job.serverRetention as { error?: string };
    assert.equal(report.error, "the passphrase the server holds for this plan opens no key of the repository; nothing was deleted; give the plan's passphrase again");
    assert.ok(log.includes(`retention on the server's destinations failed: ${report.error}; the snapshot is kept`), log.join('\n'));
    const [alert] = await openAlerts(s, planId);
    assert.match(alert?.message ?? '', /^plan photos: retention on the server's destinations failed: the passphrase the server holds/);
    assert.equal(bucketSnapshots(s).filter((x) => x.paths.includes(photos)).length, 2, 'nothing deleted');

    await s.alice.json('PUT', `/api/plans/${planId}/passphrase`, { passphrase: PASSPHRASE });
    change(photos);
    const fixed = await runToEnd(s, planId);
    assert.equal((fixed.job.serverRetention as { forgotten: number }).forgotten, 2);
    assert.deepEqual(bucketSnapshots(s).filter((x) => x.paths.includes(photos)).map((x) => x.id), [fixed.job.snapshotId]);
    assert.deepEqual(await openAlerts(s, planId), [], 'resolved by the run that applied it');
    assert.match(ok(['check', '--repo', `s3:${s.fleet.s3.endpoint}/${s.fleet.s3.bucket}/fleet/users/${s.alice.userId}`], { env: { AWS_ACCESS_KEY_ID: s.fleet.s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s.fleet.s3.credentials.secretAccessKey, COFFER_PASSWORD: PASSPHRASE } }).stdout, /no errors were found/);
  });

  test('without the passphrase the agent reports the retention not applied and an alert opens', async () => {
    await s.alice.json('PUT', `/api/plans/${planId}/passphrase`, { passphrase: '' });
    change(photos);
    const { job, log } = await runToEnd(s, planId);
    assert.equal(job.serverRetention, null);
    assert.match(job.retention?.error ?? '', /^not applied: bucket is write-only for agents .*give the server the plan's passphrase/);
    assert.ok(log.some((l) => /^retention failed: not applied: bucket is write-only for agents/.test(l)), log.join('\n'));
    const [alert] = await openAlerts(s, planId);
    assert.match(alert?.message ?? '', /^plan photos: retention failed: not applied: bucket is write-only/);
    assert.equal(bucketSnapshots(s).filter((x) => x.paths.includes(photos)).length, 2, 'nothing forgotten');
  });

  test('a plan with a destination of the agent and one of the server: each side forgets on its own, and nothing forgotten comes back', async () => {
    const local = path.join(s.dir, 'local-repo');
    const disk = (await s.alice.json<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: local }, 201)).id;
    const music = source(s, 'music');
    const mixed = (await s.alice.json<{ id: string }>('POST', '/api/plans', { name: 'music', agentId: s.agentId, paths: [music], destinations: [disk, s.fleet.destinationId], retention: { keepLast: 1 } }, 201)).id;
    await s.alice.json('PUT', `/api/plans/${mixed}/passphrase`, { passphrase: PASSPHRASE });
    let last: JobView | undefined;
    for (let i = 0; i < 3; i++) {
      change(music);
      const { job, log } = await runToEnd(s, mixed);
      assert.equal(job.retention?.forgotten, i === 0 ? 0 : 1, `the agent on disk, run ${i + 1}: ${log.join('\n')}`);
      assert.equal((job.serverRetention as { forgotten: number }).forgotten, i === 0 ? 0 : 1, `the server on bucket, run ${i + 1}: ${log.join('\n')}`);
      last = job;
    }
    const localSnapshots = jsonLines<{ id: string; paths: string[] }>(ok(['snapshots', '--repo', local, '--json'], { env: { COFFER_PASSWORD: PASSPHRASE } }).stdout);
    assert.deepEqual(localSnapshots.filter((x) => x.paths.includes(music)).map((x) => x.id), [last!.snapshotId]);
    assert.deepEqual(bucketSnapshots(s).filter((x) => x.paths.includes(music)).map((x) => x.id), [last!.snapshotId]);
    // No forgotten snapshot object was copied back by a backup's catch-up from the other replica.
    assert.equal(fs.readdirSync(path.join(local, 'snapshots')).length, localSnapshots.length);
    const objects: string[] = [];
    for await (const o of aliceStore(s).list('snapshots')) objects.push(o.name);
    assert.equal(objects.length, bucketSnapshots(s).length);
    assert.deepEqual(await openAlerts(s, mixed), []);
  });

  test("the server's prunes remove the markers an agent leaves and cannot delete, once that agent is gone", async () => {
    const writers = async () => {
      const repo = await Repository.open([aliceStore(s)], PASSPHRASE);
      try {
        return await observeWriters(repo, repo.stores[0]!, Date.now());
      } finally {
        await repo.close();
      }
    };
    const old = s.fleet.agents[0]!;
    const oldPid = old.child.pid;
    assert.ok((await writers()).some((w) => w.marker.pid === oldPid && w.marker.command === 'backup'), 'the agent left its markers: it may not delete');
    await old.stop();
    const agent = startAgent({ server: s.fleet.server.url, key: s.fleet.key, dir: path.join(s.dir, 'agent'), env: { COFFER_PASSWORD: PASSPHRASE } });
    s.fleet.agents.unshift(agent);
    await until('the agent to be back', async () => (await s.alice.json<{ id: string; status: string }>('GET', `/api/agents/${s.agentId}`)).status === 'online');
    const docs = source(s, 'docs');
    const plan = (await s.alice.json<{ id: string }>('POST', '/api/plans', { name: 'docs', agentId: s.agentId, paths: [docs], destinations: [s.fleet.destinationId], retention: { keepLast: 1 }, pruneEvery: 1 }, 201)).id;
    await s.alice.json('PUT', `/api/plans/${plan}/passphrase`, { passphrase: PASSPHRASE });
    change(docs);
    const { log } = await runToEnd(s, plan);
    assert.ok(log.some((l) => /^server: removed the markers of writers that are gone \{"writers":[1-9]\d*\}$/.test(l)), log.join('\n'));
    const left = await writers();
    assert.deepEqual(left.filter((w) => w.marker.pid === oldPid), [], 'the gone agent\'s markers are removed');
    assert.ok(left.every((w) => w.marker.pid === agent.child.pid), 'only the running agent\'s markers stay (live: its last backup)');
  });

  test('the passphrase never appears in an API answer, the server log or the event stream', async () => {
    const answers = [
      await s.alice.request('GET', '/api/plans'),
      await s.alice.request('GET', `/api/plans/${planId}`),
      await s.alice.request('GET', '/api/jobs'),
      await s.alice.request('GET', '/api/openapi.json'),
      await s.alice.request('PUT', `/api/plans/${planId}/passphrase`, { passphrase: PASSPHRASE }),
    ];
    for (const a of answers) assert.ok(!a.body.includes(PASSPHRASE), a.body.slice(0, 200));
    const events = await s.fleet.server.ctx.db.selectFrom('events').selectAll().execute();
    assert.ok(events.length > 0);
    assert.ok(!JSON.stringify(events).includes(PASSPHRASE), 'not in the event stream');
    const logged = fs.readFileSync(s.logFile, 'utf8');
    assert.match(logged, /passphrase/, 'the log has the requests that set it');
    assert.ok(!logged.includes(PASSPHRASE), 'not in the server log');
  });
});

describe('a retention the embedded server left due', () => {
  let s: Setup;
  let restarted: TestServer | undefined;

  before(async () => {
    s = await setUp({ keepDataDir: true });
  });

  after(async () => {
    // The fleet's own server was closed by the test: the rest is closed piece by piece.
    await Promise.all(s.fleet.agents.map((a) => a.stop('SIGKILL')));
    await restarted?.close();
    await s.fleet.s3.stop();
    for (const d of s.fleet.dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('runs when the server starts again (the in-process queue is rebuilt from the jobs table)', async () => {
    const photos = source(s, 'photos');
    const planId = (await s.alice.json<{ id: string }>('POST', '/api/plans', { name: 'photos', agentId: s.agentId, paths: [photos], destinations: [s.fleet.destinationId], retention: { keepLast: 1 } }, 201)).id;
    await s.alice.json('PUT', `/api/plans/${planId}/passphrase`, { passphrase: PASSPHRASE });
    for (let i = 0; i < 2; i++) {
      change(photos);
      await runToEnd(s, planId);
    }
    change(photos);
    const { id } = await s.alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    await s.fleet.finished(id);
    // The server stops as the run completes, before its retention has run: due, in the jobs table only.
    // (The stop may have come a moment too late; the row is put back as such a stop leaves it.)
    await s.fleet.server.close();
    const { dataDir } = s.fleet.server;
    const file = new DatabaseSync(path.join(dataDir, SQLITE_FILE));
    file.prepare("update jobs set server_retention = 'due' where id = ?").run(id);
    file.close();
    restarted = await startTestServer({ dataDir });
    const db = restarted.ctx.db;
    const job = await until('the retention to run after the restart', async () => {
      const row = await db.selectFrom('jobs').select(['server_retention', 'snapshot_id']).where('id', '=', id).executeTakeFirstOrThrow();
      return row.server_retention !== 'due' && row.server_retention !== null ? row : undefined;
    }, 60_000);
    const report = JSON.parse(job.server_retention!) as { forgotten: number; error?: string };
    assert.equal(report.error, undefined);
    assert.equal(bucketSnapshots(s).filter((x) => x.paths.includes(photos)).length, 1, JSON.stringify(report));
    assert.deepEqual(bucketSnapshots(s).filter((x) => x.paths.includes(photos)).map((x) => x.id), [job.snapshot_id]);
  });
});

describe('the server applies retention on its S3 destinations (PostgreSQL, two servers)', { skip: postgresAvailable() ? false : 'PostgreSQL is not installed' }, () => {
  let postgres: PostgresServer;
  let s: Setup;
  let second: TestServer;

  before(async () => {
    postgres = await startPostgres();
    const databaseUrl = await postgres.createDatabase();
    s = await setUp({ databaseUrl });
    // A second server on the same database and secret: both work the retention queue.
    second = await startTestServer({ databaseUrl, dataDir: s.fleet.server.dataDir });
  });

  after(async () => {
    await second?.close();
    await s?.fleet.close();
    postgres?.stop();
  });

  test("the retention runs as a pg-boss task, once per run with two servers: the bucket keeps the plan's last snapshot", async () => {
    const photos = source(s, 'photos');
    const planId = (await s.alice.json<{ id: string }>('POST', '/api/plans', { name: 'photos', agentId: s.agentId, paths: [photos], destinations: [s.fleet.destinationId], retention: { keepLast: 1 } }, 201)).id;
    await s.alice.json('PUT', `/api/plans/${planId}/passphrase`, { passphrase: PASSPHRASE });
    let last: JobView | undefined;
    for (let i = 0; i < 3; i++) {
      change(photos);
      const { job, log } = await runToEnd(s, planId);
      assert.equal((job.serverRetention as { forgotten: number }).forgotten, i === 0 ? 0 : 1, log.join('\n'));
      assert.equal(log.filter((l) => l.startsWith("retention on the server's destinations")).length, 1, `applied once: ${log.join('\n')}`);
      assert.equal(log.filter((l) => l.startsWith('server: retention applied')).length, 1, `applied once: ${log.join('\n')}`);
      last = job;
    }
    assert.deepEqual(bucketSnapshots(s).filter((x) => x.paths.includes(photos)).map((x) => x.id), [last!.snapshotId]);
  });
});
