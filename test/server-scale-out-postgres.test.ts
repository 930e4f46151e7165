// A fleet plan scaled out over the agents with a label on PostgreSQL: two server processes share the
// database, and the three agents with the label talk to either (the scenario: helpers/fleet-scale-out.ts).
// The run lives in the database and its shards are pg-boss jobs, so the coordinator's polls, the
// workers' claims, heartbeats and results, and the check that hands a killed agent's shard to another
// are answered by whichever server an agent talks to. Bob, on the other server, sees and claims nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PROTOCOL_VERSION } from '../src/agent/protocol.ts';
import type { AgentProcess } from './helpers/agent.ts';
import { makeFleetSource, runLabelledPlan, startLabelledAgents } from './helpers/fleet-scale-out.ts';
import { postgresAvailable, startPostgres, type PostgresServer } from './helpers/postgres.ts';
import { Client, startAgentFleet, startTestServer, type AgentFleet, type TestServer } from './helpers/server.ts';

describe('scaled-out fleet runs on PostgreSQL, two servers', { skip: postgresAvailable() ? false : 'PostgreSQL is not installed' }, () => {
  let postgres: PostgresServer;
  let fleet: AgentFleet;
  let second: TestServer;
  let dir: string;
  let source: string;
  let agents: Map<string, AgentProcess>;

  before(async () => {
    postgres = await startPostgres();
    const databaseUrl = await postgres.createDatabase();
    // Three agents, two servers, PostgreSQL and s3rver share two cores: a shard's heartbeats may come seconds late.
    fleet = await startAgentFleet({ heartbeatTimeoutSeconds: 10, databaseUrl });
    // The second server: the same database and secret (it unseals the destination's credentials too).
    second = await startTestServer({ databaseUrl, dataDir: fleet.server.dataDir, listen: true, settings: { heartbeatTimeoutSeconds: 10, heartbeatIntervalSeconds: 1 }, monitorIntervalMs: 300 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-fleet-pg-'));
    fleet.dirs.push(dir);
    source = makeFleetSource(path.join(dir, 'source'));
    // a (the coordinator) on the first server; b and c (the one killed) on the second.
    agents = await startLabelledAgents(fleet, dir, [fleet.server.url, second.url, second.url]);
  });

  after(async () => {
    await Promise.all(fleet?.agents.map((a) => a.stop('SIGKILL')) ?? []);
    await second?.close();
    await fleet?.close();
    postgres?.stop();
  });

  test('one job; its shards are backed up by agents on both servers; a SIGKILLed agent loses its shard to another; the snapshot restores byte for byte with the tree id of a single-agent backup', async () => {
    const [, onSecond] = [...agents.values()];
    const workers = await runLabelledPlan(fleet, agents, dir, source, bobSeesNothing);
    assert.ok(workers.includes(agents.values().next().value!), 'the agent on the first server backed up shards');
    assert.ok(workers.includes(onSecond!), 'an agent on the second server backed up shards');
  });

  /** Bob, with an agent labelled like Alice's, on the other server, sees nothing of her live run and can neither claim nor follow it. */
  async function bobSeesNothing(jobId: string, run: string): Promise<void> {
    await fleet.alice.json('PUT', '/api/admin/settings', { signup: 'open' });
    const bob = await new Client(second.app).signup('bob@example.com');
    const bobKey = (await bob.json<{ key: string }>('POST', '/api/keys', { name: 'b' }, 201)).key;
    const bobAgent = (await second.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${bobKey}` }, payload: { protocol: PROTOCOL_VERSION, hostname: 'h', os: 'Linux', version: '0.1.0', capacity: 4, labels: ['nas'] } })).json().agentId;
    assert.equal((await bob.request('GET', `/api/jobs/${jobId}/shards`)).statusCode, 404);
    const headers = { authorization: `Bearer ${bobKey}`, 'x-coffer-agent': bobAgent };
    const claim = await second.app.inject({ method: 'POST', url: '/api/agent/shards/claim', headers, payload: { run, capacity: 4 } });
    assert.deepEqual(claim.json(), { shards: [], over: true });
    assert.equal((await second.app.inject({ method: 'GET', url: `/api/agent/shards/runs/${run}`, headers })).statusCode, 404);
    assert.equal((await second.app.inject({ method: 'POST', url: '/api/agent/shards/runs', headers, payload: { jobId, shards: [] } })).statusCode, 404);
  }
});
