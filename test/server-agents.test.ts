// Real agent processes back up to s3rver through pre-signed URLs from a real server, over a WebSocket;
// restores come from the API; write-only destinations refuse overwrites and deletes, and a plan's
// retention is not applied there. Remote control, killed agents and revoked keys: server-agents-control.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { S3Store } from '../src/store/s3.ts';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { startAgentFleet, type AgentFleet, type Client, type TestServer } from './helpers/server.ts';

let fleet: AgentFleet;
let server: TestServer;
let alice: Client;
let key: string;
let destinationId: string;

before(async () => {
  fleet = await startAgentFleet();
  ({ server, alice, key, destinationId } = fleet);
});
after(() => fleet.close());

function sourceTree(dir: string): string {
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'docs/deep'), { recursive: true });
  fs.writeFileSync(path.join(src, 'docs/a.txt'), 'hello fleet\n');
  fs.writeFileSync(path.join(src, 'docs/deep/b.bin'), crypto.randomBytes(300_000));
  fs.writeFileSync(path.join(src, 'c.txt'), 'c'.repeat(10_000));
  return src;
}

async function agentOnline(hostname?: string) {
  return until('the agent to register', async () => {
    const list = await alice.json<{ id: string; status: string; hostname: string }[]>('GET', '/api/agents');
    return list.find((a) => a.status === 'online' && (!hostname || a.hostname === hostname));
  });
}

/** The objects of Alice's repository, read with the server's credentials. */
function aliceStore(): S3Store {
  return new S3Store(`s3:${fleet.s3.endpoint}/${fleet.s3.bucket}/fleet/users/${alice.userId}`, { env: { AWS_ACCESS_KEY_ID: fleet.s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: fleet.s3.credentials.secretAccessKey } });
}

describe('an agent over a WebSocket', () => {
  let agent: AgentProcess;
  let agentId: string;
  let planId: string;
  let src: string;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-agent-'));
    fleet.dirs.push(dir);
    src = sourceTree(dir);
    agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent') });
    fleet.agents.push(agent);
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
    const done = await fleet.finished(requested.id);
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
    const restored = await fleet.finished(restore.id);
    assert.equal(restored.status, 'completed', restored.error ?? '');
    assert.deepEqual(fs.readFileSync(path.join(target, src, 'docs/deep/b.bin')), fs.readFileSync(path.join(src, 'docs/deep/b.bin')));
    assert.equal(fs.readFileSync(path.join(target, src, 'docs/a.txt'), 'utf8'), 'hello fleet\n');
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

  test("a plan's retention is not applied on a write-only destination: the backup stands, an alert says who can apply it", async () => {
    const kept = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'kept', agentId, paths: [path.join(src, 'docs')], destinations: [destinationId], retention: { keepLast: 1 } }, 201)).id;
    const requested = await alice.json<{ id: string }>('POST', `/api/plans/${kept}/run`, undefined, 202);
    const done = await fleet.finished(requested.id);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    const log = await alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${requested.id}/log`);
    assert.ok(log.lines.some((l) => /^retention failed: not applied: bucket is write-only for agents .*coffer forget --prune.*; the snapshot is kept$/.test(l.message)), JSON.stringify(log.lines));
    const alerts = await alice.json<{ kind: string; subjectId: string }[]>('GET', '/api/alerts');
    assert.ok(alerts.some((a) => a.kind === 'retention-failed' && a.subjectId === kept), JSON.stringify(alerts));
  });
});
