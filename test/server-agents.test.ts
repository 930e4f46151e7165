// Real agent processes back up to s3rver through pre-signed URLs from a real server, over a WebSocket
// and over long polls; restores come from the API; revoked keys, killed agents and write-only
// destinations behave as documented.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { S3Store } from '../src/store/s3.ts';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let s3: S3Server;
let server: TestServer;
let alice: Client;
let key: string;
let destinationId: string;
const agents: AgentProcess[] = [];
const dirs: string[] = [];

before(async () => {
  s3 = await startS3Server('fleet');
  server = await startTestServer({ listen: true, settings: { heartbeatTimeoutSeconds: 3, heartbeatIntervalSeconds: 1 }, monitorIntervalMs: 300 });
  alice = await new Client(server.app).signup('alice@example.com');
  key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'laptop' }, 201)).key;
  destinationId = (
    await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'bucket', kind: 's3', location: `s3:${s3.endpoint}/${s3.bucket}/fleet`, ...s3.credentials }, 201)
  ).id;
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL')));
  await server.close();
  await s3.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function sourceTree(dir: string): string {
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'docs/deep'), { recursive: true });
  fs.writeFileSync(path.join(src, 'docs/a.txt'), 'hello fleet\n');
  fs.writeFileSync(path.join(src, 'docs/deep/b.bin'), crypto.randomBytes(300_000));
  fs.writeFileSync(path.join(src, 'c.txt'), 'c'.repeat(10_000));
  return src;
}

async function job(id: string) {
  return alice.json<{ status: string; snapshotId: string | null; error: string | null; progress: unknown; destinations: { status: string }[] }>('GET', `/api/jobs/${id}`);
}

async function finished(id: string, timeoutMs = 60_000) {
  return until(`job ${id} to finish`, async () => {
    const j = await job(id);
    return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  }, timeoutMs);
}

async function agentOnline(hostname?: string) {
  return until('the agent to register', async () => {
    const list = await alice.json<{ id: string; status: string; hostname: string }[]>('GET', '/api/agents');
    return list.find((a) => a.status === 'online' && (!hostname || a.hostname === hostname));
  });
}

/** The objects of Alice's repository, read with the server's credentials. */
function aliceStore(): S3Store {
  return new S3Store(`s3:${s3.endpoint}/${s3.bucket}/fleet/users/${alice.userId}`, { env: { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey } });
}

describe('an agent over a WebSocket', () => {
  let agent: AgentProcess;
  let agentId: string;
  let planId: string;
  let src: string;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-agent-'));
    dirs.push(dir);
    src = sourceTree(dir);
    agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent') });
    agents.push(agent);
    agentId = (await agentOnline()).id;
    planId = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'home', agentId, paths: [src], destinations: [destinationId] }, 201)).id;
  });

  test('registers with its host name, OS, version and capacity', async () => {
    const a = await alice.json<{ os: string; version: string; capacity: number; outdated: boolean }>('GET', `/api/agents/${agentId}`);
    assert.match(a.os, /Linux/);
    assert.equal(a.capacity, 2);
    assert.equal(a.outdated, false);
  });

  test('a backup run from the API goes through pre-signed URLs into the user prefix, and is restored from the API', async () => {
    const requested = await alice.json<{ id: string; status: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    assert.equal(requested.status, 'pending');
    const done = await finished(requested.id);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    assert.ok(done.snapshotId);
    assert.deepEqual(done.destinations.map((d) => d.status), ['completed']);
    const progress = done.progress as { recentFiles: string[]; lastDirectory?: { path: string }; destinations: { location: string }[] };
    assert.ok(progress.recentFiles.includes(path.join(src, 'docs/deep/b.bin')), 'the dashboard gets the recent files');
    assert.ok(progress.lastDirectory, 'and the last completed directory');
    assert.equal(progress.destinations.length, 1, 'and a bar per destination');
    const store = aliceStore();
    const snapshots = [];
    for await (const o of store.list('snapshots')) snapshots.push(o.name);
    await store.close();
    assert.deepEqual(snapshots, [`snapshots/${done.snapshotId}`]);
    const log = await alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${requested.id}/log`);
    assert.ok(log.lines.some((l) => /snapshot .* committed|snapshot [0-9a-f]{8}:/.test(l.message)), JSON.stringify(log.lines));

    const target = path.join(dir, 'restored');
    const restore = await alice.json<{ id: string }>('POST', '/api/restores', { agentId, destinationId, snapshot: 'latest', target }, 202);
    const restored = await finished(restore.id);
    assert.equal(restored.status, 'completed', restored.error ?? '');
    assert.deepEqual(fs.readFileSync(path.join(target, 'src/docs/deep/b.bin')), fs.readFileSync(path.join(src, 'docs/deep/b.bin')));
    assert.equal(fs.readFileSync(path.join(target, 'src/docs/a.txt'), 'utf8'), 'hello fleet\n');
  });

  test('the write-only agent cannot overwrite or delete: the broker refuses both', async () => {
    const headers = { authorization: `Bearer ${key}`, 'x-coffer-agent': agentId };
    const existing = await server.app.inject({ method: 'POST', url: `/api/agent/storage/${destinationId}/put`, headers, payload: { name: 'config', size: 5 } });
    assert.deepEqual(existing.json().exists, true, 'a taken name gets no upload URL');
    const outside = await server.app.inject({ method: 'POST', url: `/api/agent/storage/${destinationId}/put`, headers, payload: { name: '../other-user/config', size: 5 } });
    assert.equal(outside.statusCode, 400);
    const del = await server.app.inject({ method: 'DELETE', url: `/api/agent/storage/${destinationId}/config`, headers });
    assert.equal(del.statusCode, 404, 'there is no route to delete');
    const { PresignedStore } = await import('../src/store/presigned.ts');
    const { ServerClient } = await import('../src/agent/client.ts');
    const client = new ServerClient(server.url, key);
    client.agentId = agentId;
    const store = new PresignedStore('bucket', client.broker(destinationId));
    await assert.rejects(store.delete('config'), /write-only/);
    const config = await store.get('config');
    await assert.rejects(store.put('config', Buffer.concat([config, Buffer.from('x')])), /exists with/);
    assert.equal(await store.put('config', config), false, 'the same object again is a no-op');
  });
});

describe('remote control, offline agents and revoked keys', () => {
  let dir: string;
  let src: string;
  let agent: AgentProcess;
  let agentId: string;
  let planId: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-agent-'));
    dirs.push(dir);
    src = path.join(dir, 'big');
    fs.mkdirSync(src);
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), crypto.randomBytes(1_000_000));
    agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent'), transport: 'poll' });
    agents.push(agent);
    await until('the long-polling agent', async () => /long polling/.test(agent.output()) && (await alice.json<{ id: string; status: string }[]>('GET', '/api/agents')).length === 2);
    const list = await alice.json<{ id: string; registeredAt: number }[]>('GET', '/api/agents');
    agentId = list.sort((a, b) => b.registeredAt - a.registeredAt)[0]!.id;
    planId = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'big', agentId, paths: [src], destinations: [destinationId] }, 201)).id;
  });

  const slow = () => alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 150_000 });

  test('over long polls: pause, resume and cancel a running job', async () => {
    await slow();
    await until('the limit to reach the agent', async () => true);
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    await until('the job to run', async () => (await alice.json<{ status: string; stage: string | null }>('GET', `/api/jobs/${job.id}`)).stage === 'packing' || undefined);
    const busy = await alice.request('POST', `/api/plans/${planId}/run`);
    assert.equal(busy.statusCode, 409, 'one run per plan');
    assert.match(busy.json().error, /unfinished job/);
    await alice.json('POST', `/api/jobs/${job.id}/pause`, undefined, 202);
    await until('paused', async () => (await alice.json<{ status: string }>('GET', `/api/jobs/${job.id}`)).status === 'paused');
    assert.equal((await alice.request('POST', `/api/jobs/${job.id}/pause`)).statusCode, 409);
    await alice.json('POST', `/api/jobs/${job.id}/resume`, undefined, 202);
    await until('running again', async () => (await alice.json<{ status: string }>('GET', `/api/jobs/${job.id}`)).status === 'running');
    await alice.json('POST', `/api/jobs/${job.id}/cancel`, undefined, 202);
    const j = await finished(job.id);
    assert.equal(j.status, 'cancelled');
    assert.equal((await alice.request('POST', `/api/jobs/${job.id}/cancel`)).statusCode, 409);
  });

  test('a killed agent goes offline after missed heartbeats: its job is interrupted, an alert opens; back, the job resumes and completes', async () => {
    await slow();
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    await until('the job to upload', async () => ((await alice.json<{ bytesDone: number }>('GET', `/api/jobs/${job.id}`)).bytesDone > 0 ? true : undefined));
    await agent.stop('SIGKILL');
    const interrupted = await until('the job to be interrupted', async () => {
      const j = await alice.json<{ status: string; error: string }>('GET', `/api/jobs/${job.id}`);
      return j.status === 'interrupted' ? j : undefined;
    }, 15_000);
    assert.match(interrupted.error, /offline/);
    const alerts = await alice.json<{ kind: string; subjectId: string; resolvedAt: number | null; id: string }[]>('GET', '/api/alerts');
    const offline = alerts.find((a) => a.kind === 'agent-offline' && a.subjectId === agentId)!;
    assert.ok(offline);
    const acked = await alice.json<{ acknowledgedBy: string; acknowledgedAt: number }>('POST', `/api/alerts/${offline.id}/acknowledge`);
    assert.equal(acked.acknowledgedBy, 'alice@example.com');
    await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: null });
    agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent'), transport: 'poll' });
    agents.push(agent);
    const done = await finished(job.id);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    const after = await alice.json<{ id: string; resolvedAt: number | null }[]>('GET', '/api/alerts?state=all');
    assert.ok(after.find((a) => a.id === offline.id)!.resolvedAt, 'the alert resolved itself');
    const history = await alice.json<{ jobs: { id: string }[] }>('GET', `/api/jobs?plan=${planId}&status=completed`);
    assert.deepEqual(history.jobs.map((j) => j.id), [job.id]);
  });

  test('a revoked key stops the agent at once, including an open WebSocket', async () => {
    const second = await alice.json<{ id: string; key: string }>('POST', '/api/keys', { name: 'revoke me' }, 201);
    const ws = startAgent({ server: server.url, key: second.key, dir: path.join(dir, 'agent-ws') });
    agents.push(ws);
    await until('the agent to connect', () => /registered/.test(ws.output()));
    await until('the socket to be served', () => server.fleet.hub.connected >= 1);
    const started = Date.now();
    await alice.json('DELETE', `/api/keys/${second.id}`);
    const code = await ws.exited;
    assert.notEqual(code, 0);
    assert.ok(Date.now() - started < 5000, 'stopped within seconds');
    assert.match(ws.output(), /revoked/);
    const refused = await server.app.inject({ method: 'POST', url: '/api/agent/messages', headers: { authorization: `Bearer ${second.key}` }, payload: { messages: [] } });
    assert.equal(refused.statusCode, 401);
  });
});
