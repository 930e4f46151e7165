// Real agent processes under remote control: pause, resume and cancel over long polls (promptly, under
// a bandwidth limit), an agent killed mid-backup (offline, interrupted, alert, resumed when it is back),
// one stopped mid-backup (promptly, the job interrupted), and a key revoked under an open WebSocket.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
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

describe('remote control, offline agents and revoked keys', () => {
  let dir: string;
  let src: string;
  let agent: AgentProcess;
  let agentId: string;
  let planId: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-agent-'));
    fleet.dirs.push(dir);
    src = path.join(dir, 'big');
    fs.mkdirSync(src);
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), crypto.randomBytes(1_000_000));
    agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent'), transport: 'poll' });
    fleet.agents.push(agent);
    await until('the long-polling agent', async () => /long polling/.test(agent.output()) && (await alice.json<{ id: string; status: string }[]>('GET', '/api/agents')).length === 1);
    const list = await alice.json<{ id: string; registeredAt: number }[]>('GET', '/api/agents');
    agentId = list.sort((a, b) => b.registeredAt - a.registeredAt)[0]!.id;
    planId = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'big', agentId, paths: [src], destinations: [destinationId] }, 201)).id;
  });

  const slow = () => alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 150_000 });
  /** `until`, with what the agent printed when it times out. */
  const untilAgent = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs?: number) =>
    until(what, check, timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\nthe agent said:\n${agent.output()}`);
    });

  test('over long polls: pause, resume and cancel a running job', async () => {
    await slow();
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    // Packing 4 MB can end between two progress reports (a second apart); the upload after it lasts
    // about 27 s at the limit. Either is a running backup to pause.
    await untilAgent('the job to run', async () => ['packing', 'uploading'].includes((await alice.json<{ stage: string | null }>('GET', `/api/jobs/${job.id}`)).stage ?? '') || undefined);
    const busy = await alice.request('POST', `/api/plans/${planId}/run`);
    assert.equal(busy.statusCode, 409, 'one run per plan');
    assert.match(busy.json().error, /unfinished job/);
    await alice.json('POST', `/api/jobs/${job.id}/pause`, undefined, 202);
    await untilAgent('paused', async () => (await alice.json<{ status: string }>('GET', `/api/jobs/${job.id}`)).status === 'paused');
    assert.equal((await alice.request('POST', `/api/jobs/${job.id}/pause`)).statusCode, 409);
    await alice.json('POST', `/api/jobs/${job.id}/resume`, undefined, 202);
    await untilAgent('running again', async () => (await alice.json<{ status: string }>('GET', `/api/jobs/${job.id}`)).status === 'running');
    await alice.json('POST', `/api/jobs/${job.id}/cancel`, undefined, 202);
    const j = await fleet.finished(job.id);
    assert.equal(j.status, 'cancelled');
    assert.equal((await alice.request('POST', `/api/jobs/${job.id}/cancel`)).statusCode, 409);
  });

  test('a killed agent goes offline after missed heartbeats: its job is interrupted, an alert opens; back, the job resumes and completes', async () => {
    await slow();
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    await untilAgent('the job to upload', async () => ((await alice.json<{ bytesDone: number }>('GET', `/api/jobs/${job.id}`)).bytesDone > 0 ? true : undefined));
    await agent.stop('SIGKILL');
    const interrupted = await untilAgent('the job to be interrupted', async () => {
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
    fleet.agents.push(agent);
    const done = await fleet.finished(job.id);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    const after = await alice.json<{ id: string; resolvedAt: number | null }[]>('GET', '/api/alerts?state=all');
    assert.ok(after.find((a) => a.id === offline.id)!.resolvedAt, 'the alert resolved itself');
    const history = await alice.json<{ jobs: { id: string }[] }>('GET', `/api/jobs?plan=${planId}&status=completed`);
    assert.deepEqual(history.jobs.map((j) => j.id), [job.id]);
  });

  // Regression: Ctrl-C or SIGTERM waited for the long poll in flight (up to 25 s) before stopping the
  // jobs, so a throttled backup ran on, and could complete, after the agent said it was stopping.
  test('a long-polling agent stopped mid-backup stops within seconds; its job is interrupted, not run to the end', async () => {
    await slow();
    // New data, so the run has something to upload (the last run stored these files already).
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), crypto.randomBytes(1_000_000));
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    await untilAgent('the job to run', async () => ['packing', 'uploading'].includes((await alice.json<{ stage: string | null }>('GET', `/api/jobs/${job.id}`)).stage ?? '') || undefined);
    const stopping = Date.now();
    await agent.stop('SIGTERM');
    const took = Date.now() - stopping;
    assert.ok(took < 10_000, `stopped in ${took} ms`);
    const j = await untilAgent('the job to be interrupted', async () => {
      const now = await alice.json<{ status: string; error: string | null }>('GET', `/api/jobs/${job.id}`);
      return now.status === 'interrupted' ? now : undefined;
    });
    assert.match(j.error ?? '', /shutting down/);
  });

  test('a revoked key stops the agent at once, including an open WebSocket', async () => {
    const second = await alice.json<{ id: string; key: string }>('POST', '/api/keys', { name: 'revoke me' }, 201);
    const ws = startAgent({ server: server.url, key: second.key, dir: path.join(dir, 'agent-ws') });
    fleet.agents.push(ws);
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
