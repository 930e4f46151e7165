// A fleet plan scaled out over the agents with a label, on the embedded server (the scenario:
// helpers/fleet-scale-out.ts; on PostgreSQL: server-scale-out-postgres.test.ts). Nobody else sees the
// run or can claim its shards.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PROTOCOL_VERSION } from '../src/agent/protocol.ts';
import type { AgentProcess } from './helpers/agent.ts';
import { makeFleetSource, runLabelledPlan, startLabelledAgents } from './helpers/fleet-scale-out.ts';
import { Client, startAgentFleet, type AgentFleet } from './helpers/server.ts';

let fleet: AgentFleet;
let bob: Client;
let bobKey: string;
let bobAgent: string;
let dir: string;
let source: string;
let agents: Map<string, AgentProcess>;

before(async () => {
  // Three agents, the server and s3rver share two cores: a shard's heartbeats may come seconds late.
  fleet = await startAgentFleet({ heartbeatTimeoutSeconds: 10 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-fleet-scale-'));
  fleet.dirs.push(dir);
  source = makeFleetSource(path.join(dir, 'source'));
  await fleet.alice.json('PUT', '/api/admin/settings', { signup: 'open' });
  bob = await new Client(fleet.server.app).signup('bob@example.com');
  bobKey = (await bob.json<{ key: string }>('POST', '/api/keys', { name: 'b' }, 201)).key;
  // Bob's agent has the label too: it must get nothing of Alice's.
  bobAgent = (await fleet.server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${bobKey}` }, payload: { protocol: PROTOCOL_VERSION, hostname: 'h', os: 'Linux', version: '0.1.0', capacity: 4, labels: ['nas'] } })).json().agentId;
  agents = await startLabelledAgents(fleet, dir, [fleet.server.url]);
});
after(() => fleet.close());

test('a plan with workerLabel runs as one job whose shards spread over the agents; one SIGKILLed mid-shard loses its shard to another; the snapshot restores byte for byte with the tree id of a single-agent backup', async () => {
  await runLabelledPlan(fleet, agents, dir, source, bobSeesNothing);
});

/** Bob, with an agent labelled like Alice's, sees nothing of her live run and can neither claim nor follow it. */
async function bobSeesNothing(jobId: string, run: string): Promise<void> {
  const { server } = fleet;
  assert.equal((await bob.request('GET', `/api/jobs/${jobId}/shards`)).statusCode, 404);
  const headers = { authorization: `Bearer ${bobKey}`, 'x-coffer-agent': bobAgent };
  const claim = await server.app.inject({ method: 'POST', url: '/api/agent/shards/claim', headers, payload: { run, capacity: 4 } });
  assert.deepEqual(claim.json(), { shards: [], over: true });
  assert.equal((await server.app.inject({ method: 'GET', url: `/api/agent/shards/runs/${run}`, headers })).statusCode, 404);
  assert.equal((await server.app.inject({ method: 'POST', url: '/api/agent/shards/runs', headers, payload: { jobId, shards: [] } })).statusCode, 404);
  assert.deepEqual((await bob.json<{ labels: string[] }[]>('GET', '/api/agents')).map((a) => a.labels), [['nas']], 'Bob sees his own agent only');
}

test('plans with workers are checked: one of workers and workerLabel, a valid label, no streamed sources; null removes them', async () => {
  const { alice } = fleet;
  const [agentId] = [...agents.keys()];
  const base = { agentId, paths: ['/data'], destinations: [fleet.destinationId] };
  for (const [body, message] of [
    [{ workers: 2, workerLabel: 'nas' }, /give one/],
    [{ workerLabel: '../x' }, /workerLabel: label/],
    [{ workers: 1 }, /workers/],
    [{ allowPartial: true }, /allowPartial: only a plan with workers/],
    [{ workers: 3, sources: [{ type: 'command', command: 'date', filename: 'date.txt' }] }, /sources: a plan with workers backs up files only/],
  ] as const) {
    const res = await alice.request('POST', '/api/plans', { name: `bad-${Math.random().toString(36).slice(2)}`, ...base, ...body });
    assert.equal(res.statusCode, 400, JSON.stringify(body));
    assert.match(res.json<{ error: string }>().error, message);
  }
  const plan = await alice.json<{ id: string; workers?: number }>('POST', '/api/plans', { name: 'two', ...base, workers: 2, allowPartial: true }, 201);
  assert.equal(plan.workers, 2);
  const changed = await alice.json<{ workers?: number; workerLabel?: string; allowPartial?: boolean }>('PUT', `/api/plans/${plan.id}`, { workers: null, workerLabel: 'nas' });
  assert.deepEqual([changed.workers, changed.workerLabel, changed.allowPartial], [undefined, 'nas', true]);
  const plain = await alice.json<{ workers?: number; workerLabel?: string; allowPartial?: boolean }>('PUT', `/api/plans/${plan.id}`, { workerLabel: null, allowPartial: null });
  assert.deepEqual([plain.workers, plain.workerLabel, plain.allowPartial], [undefined, undefined, undefined]);
  // Other fields of the plan change beside them, and keep theirs.
  const kept = await alice.json<{ workerLabel?: string; retention?: unknown; paths: string[] }>('PUT', `/api/plans/${plan.id}`, { workerLabel: 'nas', retention: { keepDaily: 7 } });
  const edited = await alice.json<{ workerLabel?: string; retention?: unknown; paths: string[] }>('PUT', `/api/plans/${plan.id}`, { retention: { keepDaily: 8 }, paths: ['/data', '/srv'] });
  assert.deepEqual([kept.retention, edited.retention, edited.paths, edited.workerLabel], [{ keepDaily: 7 }, { keepDaily: 8 }, ['/data', '/srv'], 'nas']);
});
