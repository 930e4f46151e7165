// Two server processes on one PostgreSQL (pg-boss as the job engine) serve one fleet: agents connect to
// either, jobs requested on either run exactly once, and events written by one reach the other.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { startPostgres, type PostgresServer } from './helpers/postgres.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let postgres: PostgresServer;
let s3: S3Server;
let a: TestServer;
let b: TestServer;
let dir: string;
const agents: AgentProcess[] = [];

before(async () => {
  [postgres, s3] = await Promise.all([startPostgres(), startS3Server('shared')]);
  const databaseUrl = await postgres.createDatabase();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-two-servers-'));
  // Servers sharing a database share the secret that encrypts storage credentials (one data directory here).
  const shared = path.join(dir, 'server');
  a = await startTestServer({ databaseUrl, dataDir: shared, listen: true, settings: { heartbeatIntervalSeconds: 1 } });
  b = await startTestServer({ databaseUrl, dataDir: shared, listen: true, settings: { heartbeatIntervalSeconds: 1 } });
});

after(async () => {
  await Promise.all(agents.map((x) => x.stop('SIGKILL')));
  await a?.close();
  await b?.close();
  await s3?.stop();
  postgres?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('agents on either server; every job requested on either runs exactly once; events cross servers', async () => {
  const onA = await new Client(a.app).signup('ops@example.com');
  const onB = await new Client(b.app).login('ops@example.com');
  const key = (await onA.json<{ key: string }>('POST', '/api/keys', { name: 'fleet' }, 201)).key;
  const destination = (await onB.json<{ id: string }>('POST', '/api/destinations', { name: 's3', kind: 's3', location: `s3:${s3.endpoint}/${s3.bucket}`, ...s3.credentials }, 201)).id;
  const seenOnB = new Set<string>();
  b.ctx.events.subscribe((e) => {
    if (e.type === 'job.updated') seenOnB.add((e.data as { id: string; status: string }).id + (e.data as { status: string }).status);
  });
  const specs = [
    { server: a, transport: 'websocket' as const },
    { server: b, transport: 'poll' as const },
  ];
  for (const [i, spec] of specs.entries()) agents.push(startAgent({ server: spec.server.url, key, dir: path.join(dir, `agent${i}`), transport: spec.transport }));
  const plans: string[] = [];
  for (const [i, agent] of agents.entries()) {
    await until(`agent ${i}`, () => /registered/.test(agent.output()));
    const agentId = JSON.parse(fs.readFileSync(path.join(dir, `agent${i}`, 'state', 'agent.json'), 'utf8')).agentId as string;
    for (const n of [0, 1]) {
      const src = path.join(dir, `src${i}-${n}`);
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'file.txt'), `agent ${i} plan ${n}\n`);
      plans.push((await onA.json<{ id: string }>('POST', '/api/plans', { name: `p${i}-${n}`, agentId, paths: [src], destinations: [destination] }, 201)).id);
    }
  }
  const completed = (what: string, ids: readonly string[]) =>
    until(what, async () => {
      const page = await onB.json<{ jobs: { id: string; status: string }[] }>('GET', '/api/jobs?limit=100');
      const states = ids.map((id) => page.jobs.find((j) => j.id === id)?.status);
      if (states.some((s) => s === 'failed')) throw new Error(`a job failed: ${JSON.stringify(page.jobs)}`);
      return states.every((s) => s === 'completed');
    }, 90_000);
  // The first backup creates the repository alone: s3rver ignores If-None-Match, so agents creating it
  // at once would each write their own config there (S3 itself lets only one of them).
  const first = (await onB.json<{ id: string }>('POST', `/api/plans/${plans[0]}/run`, undefined, 202)).id;
  await completed('the first backup', [first]);
  const requested = await Promise.all(plans.slice(1).map((p, i) => (i % 2 ? onA : onB).json<{ id: string }>('POST', `/api/plans/${p}/run`, undefined, 202)));
  const jobs = [first, ...requested.map((j) => j.id)];
  await completed('every job to complete', jobs);
  for (const id of jobs) {
    const log = await onA.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${id}/log`);
    assert.equal(log.lines.filter((l) => l.message === 'started').length, 1, `job ${id} started once: ${JSON.stringify(log.lines)}`);
    const ranOn = agents.filter((x) => x.output().includes(`job ${id}: backup`));
    assert.equal(ranOn.length, 1, `job ${id} went to one agent`);
    assert.equal(ranOn[0]!.output().split(`job ${id}: backup`).length - 1, 1, `job ${id} was handed out once`);
    assert.ok(seenOnB.has(`${id}completed`), `server B heard job ${id} complete`);
  }
  const snapshots = (await onA.json<{ jobs: { snapshotId: string }[] }>('GET', '/api/jobs?status=completed&limit=100')).jobs.map((j) => j.snapshotId);
  assert.equal(new Set(snapshots).size, jobs.length, 'one snapshot per job');
});
