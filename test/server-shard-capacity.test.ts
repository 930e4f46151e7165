// Capacity with scaled-out fleet runs, through the agent API of an in-process server: a worker claims
// no more shards than its capacity (a coordinating job does not take a slot), and the shards it holds
// take the slots of ordinary jobs, which wait until a shard is over. The shards here are never backed
// up: the agents are played by requests, as the server sees them. Pausing the job ends its run. The same
// on the embedded server (runs in its memory) and on PostgreSQL (runs in the database, shards in pg-boss).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROTOCOL_VERSION, type ToAgent } from '../src/agent/protocol.ts';
import { postgresAvailable, startPostgres, type PostgresServer } from './helpers/postgres.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`shard capacity (${database})`, { skip: database === 'postgres' && !postgresAvailable() ? 'PostgreSQL is not installed' : false }, () => {
    let postgres: PostgresServer | undefined;
    let server: TestServer;
    let alice: Client;
    let key: string;

    before(async () => {
      postgres = database === 'postgres' ? await startPostgres() : undefined;
      server = await startTestServer(postgres ? { databaseUrl: await postgres.createDatabase() } : {});
      alice = await new Client(server.app).signup('alice@example.com');
      key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'k' }, 201)).key;
    });
    after(async () => {
      await server.close();
      postgres?.stop();
    });

    async function register(hostname: string, capacity: number): Promise<string> {
      const res = await server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${key}` }, payload: { protocol: PROTOCOL_VERSION, hostname, os: 'Linux', version: '0.1.0', capacity, labels: ['nas'] } });
      return res.json().agentId as string;
    }

    /** A request as the agent makes it. */
    async function as<T>(agentId: string, method: string, url: string, payload?: object): Promise<T> {
      const res = await server.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${key}`, 'x-coffer-agent': agentId }, ...(payload ? { payload } : {}) });
      assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
      return res.json() as T;
    }

    const jobsIn = (messages: ToAgent[]) => messages.flatMap((m) => (m.type === 'job' ? [m.job.id] : []));

    test("a worker claims shards up to its capacity, and the shards it holds keep ordinary jobs waiting", async () => {
      const coordinator = await register('coordinator', 1);
      const worker = await register('worker', 1);
      const destination = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'd', kind: 'location', location: '/srv/repo' }, 201)).id;
      const plan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'share', agentId: coordinator, paths: ['/srv/share'], destinations: [destination], workerLabel: 'nas' }, 201)).id;
      const job = (await alice.json<{ id: string }>('POST', `/api/plans/${plan}/run`, undefined, 202)).id;
      const polled = await as<{ messages: ToAgent[] }>(coordinator, 'GET', '/api/agent/poll?wait=0&free=1');
      assert.deepEqual(jobsIn(polled.messages), [job], 'the coordinator runs the job');

      const shard = (i: number) => ({ version: 1, sources: ['/srv/share'], split: [], parts: [{ source: 0, path: `/srv/share/d${i}` }], files: 10 + i, bytes: 1000 * (i + 1) });
      const { run } = await as<{ run: string }>(coordinator, 'POST', '/api/agent/shards/runs', { jobId: job, shards: [shard(0), shard(1), shard(2)] });
      const mine = await as<{ shards: { claim: string; index: number }[] }>(worker, 'POST', '/api/agent/shards/claim', { run, capacity: 4 });
      assert.equal(mine.shards.length, 1, 'no more than its capacity');
      const coordinating = await as<{ shards: unknown[] }>(coordinator, 'POST', '/api/agent/shards/claim', { run, capacity: 1 });
      assert.equal(coordinating.shards.length, 1, 'a coordinating job does not take the slot a shard needs');
      assert.equal((await as<{ shards: unknown[] }>(worker, 'POST', '/api/agent/shards/claim', { run, capacity: 1 })).shards.length, 0, 'a full worker gets nothing more');

      const status = await alice.json<{ shards: { waiting: { index: number; bytes: number; files: number }[]; running: { hostname: string }[] } }>('GET', `/api/jobs/${job}/shards`);
      assert.deepEqual(status.shards.waiting, [{ index: 2, files: 12, bytes: 3000, attempt: 0 }]);
      assert.deepEqual(status.shards.running.map((r) => r.hostname).sort(), ['coordinator', 'worker']);

      // An ordinary job for the worker waits while it holds a shard, on the long poll and on the socket's dispatch.
      const other = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'other', agentId: worker, paths: ['/etc'], destinations: [destination] }, 201)).id;
      const otherJob = (await alice.json<{ id: string }>('POST', `/api/plans/${other}/run`, undefined, 202)).id;
      assert.deepEqual(jobsIn((await as<{ messages: ToAgent[] }>(worker, 'GET', '/api/agent/poll?wait=0&free=1')).messages), [], 'its slot is taken by the shard');
      assert.equal((await alice.json<{ status: string }>('GET', `/api/jobs/${otherJob}`)).status, 'pending');
      assert.deepEqual(await as(worker, 'POST', '/api/agent/shards/finish', { claim: mine.shards[0]!.claim, outcome: { ok: false, error: 'disk on fire' } }), { taken: true });
      assert.deepEqual(jobsIn((await as<{ messages: ToAgent[] }>(worker, 'GET', '/api/agent/poll?wait=0&free=1')).messages), [otherJob], 'the slot is free again');
      // Its claim is over: a late heartbeat or result of it is refused.
      assert.deepEqual(await as(worker, 'POST', '/api/agent/shards/heartbeat', { claim: mine.shards[0]!.claim, progress: { filesDone: 1, bytesDone: 1 } }), { alive: false });
      assert.deepEqual(await as(worker, 'POST', '/api/agent/shards/finish', { claim: mine.shards[0]!.claim, outcome: { ok: false, error: 'again' } }), { taken: false });

      // Pausing the job ends the run (its resume plans again from what is stored): workers asking for more
      // are told it is over, and those holding a shard lose it.
      await alice.json('POST', `/api/jobs/${job}/pause`, undefined, 202);
      await as(coordinator, 'POST', '/api/agent/messages', { messages: [{ type: 'paused', jobId: job }] });
      assert.equal((await alice.json<{ status: string }>('GET', `/api/jobs/${job}`)).status, 'paused');
      await server.fleet.monitor.tick();
      assert.deepEqual(await as(worker, 'POST', '/api/agent/shards/claim', { run, capacity: 1 }), { shards: [], over: true });
      assert.deepEqual(await as(coordinator, 'POST', '/api/agent/shards/heartbeat', { claim: (coordinating.shards[0] as { claim: string }).claim, progress: { filesDone: 1, bytesDone: 1 } }), { alive: false });
      assert.equal((await alice.json<{ shards: unknown }>('GET', `/api/jobs/${job}/shards`)).shards, null);
    });
  });
}
