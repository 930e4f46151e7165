// A job whose queue item is lost (a server stopped between claiming the item and starting the job, or
// between writing the job and queueing it) is queued again by the periodic check, on the in-process
// queue and on pg-boss; a job whose item is still queued is left alone (no second item). And a long poll
// misses nothing that arrives while it looks: neither the nudge for new work nor a message for its agent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROTOCOL_VERSION, type ToAgent } from '../src/agent/protocol.ts';
import type { ServerEvent } from '../src/server/events/event-log.ts';
import { redispatchLost } from '../src/server/jobs/lifecycle.ts';
import { startPostgres, type PostgresServer } from './helpers/postgres.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let postgres: PostgresServer;
before(async () => {
  postgres = await startPostgres();
});
after(() => postgres.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`lost queue items (${backend})`, () => {
    let server: TestServer;
    let alice: Client;
    let headers: Record<string, string>;
    let agentId: string;
    let planId: string;
    let cursor = 0;

    async function poll(free: number, wait = 0): Promise<ToAgent[]> {
      const res = await server.app.inject({ url: `/api/agent/poll?wait=${wait}&free=${free}&cursor=${cursor}`, headers });
      assert.equal(res.statusCode, 200, res.body);
      cursor = res.json().cursor;
      return res.json().messages;
    }

    before(async () => {
      server = await startTestServer(backend === 'postgres' ? { databaseUrl: await postgres.createDatabase() } : {});
      alice = await new Client(server.app).signup('alice@example.com');
      const key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'k' }, 201)).key;
      const welcome = (await server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${key}` }, payload: { protocol: PROTOCOL_VERSION, hostname: 'nas', os: 'Linux', version: '0.1.0', capacity: 1 } })).json();
      agentId = welcome.agentId;
      cursor = welcome.cursor;
      headers = { authorization: `Bearer ${key}`, 'x-coffer-agent': agentId };
      const destination = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: '/mnt/backup' }, 201)).id;
      planId = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'docs', agentId, paths: ['/home'], destinations: [destination] }, 201)).id;
    });
    after(() => server.close());

    /** Resolves once this server has delivered a matching event to its subscribers (the hub among them). */
    function delivered(match: (e: ServerEvent) => boolean): Promise<void> {
      return new Promise((resolve) => {
        const off = server.ctx.events.subscribe((e) => {
          if (match(e)) (off(), resolve());
        });
      });
    }

    /** Runs `meanwhile` inside the poll's next look at the event log (before or after the read), once. */
    function duringNextLook(when: 'before' | 'after', meanwhile: () => Promise<void>): void {
      const events = server.ctx.events;
      const since = events.since.bind(events);
      events.since = async (...args) => {
        events.since = since;
        if (when === 'before') await meanwhile();
        const result = await since(...args);
        if (when === 'after') await meanwhile();
        return result;
      };
    }

    // Regression (the long-poll agent whose job never started within 20 s, issue 13): the wake-up came
    // between the poll's look for work and its wait, and the poll slept out its whole wait.
    test('a job queued while a long poll looks for work wakes the poll at once', async () => {
      assert.deepEqual((await poll(0)).map((m) => m.type), ['plans'], 'the plan pushed to the agent');
      let job = '';
      duringNextLook('before', async () => {
        const nudged = delivered((e) => e.type === 'agent.dispatch' && e.agentId === agentId);
        job = (await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202)).id;
        await nudged;
      });
      const started = Date.now();
      try {
        const handed = (await poll(1, 30)).filter((m) => m.type === 'job');
        assert.ok(Date.now() - started < 15_000, `woken at once, not after the whole 30 s wait (${Date.now() - started} ms)`);
        assert.deepEqual(handed.map((m) => (m as { job: { id: string } }).job.id), [job]);
      } finally {
        await alice.json('POST', `/api/jobs/${job}/cancel`, undefined, 202);
      }
    });

    // Regression: a message written after the poll read the log but delivered before it moved its cursor
    // was skipped for good (a pause or cancel the agent never heard of).
    test('a message for the agent written while a long poll reads the log is delivered, not skipped', async () => {
      await poll(0); // what is left for the agent from the test before
      duringNextLook('after', async () => {
        const told = delivered((e) => e.type === 'agent.message' && e.agentId === agentId);
        await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 123_456 });
        await told;
      });
      const started = Date.now();
      const messages = await poll(0, 30);
      // The limits go whole: the agent's own and its user's destinations'.
      assert.deepEqual(messages.map((m) => ({ type: m.type, limits: (m as { limits?: unknown }).limits })), [{ type: 'limits', limits: { upload: 123_456 } }]);
      assert.ok(Date.now() - started < 15_000, `woken at once (${Date.now() - started} ms)`);
      assert.deepEqual(await poll(0), [], 'and once only');
    });

    test('an item claimed by a server that then stopped: the job is queued again and handed out once', async () => {
      const job = (await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202)).id;
      // A server takes the item and stops before starting the job: the job waits, with nothing queued.
      const taken = await server.ctx.queue.fetch(agentId, 5);
      assert.deepEqual(taken.map((i) => i.jobId), [job]);
      assert.equal(await server.ctx.queue.isQueued(agentId, job), false);
      assert.deepEqual((await poll(1)).filter((m) => m.type === 'job'), [], 'nothing to hand out');
      assert.equal(await redispatchLost(server.ctx), 0, 'not before it has waited long enough');
      await sleep(20);
      assert.equal(await redispatchLost(server.ctx, 10), 1);
      assert.equal(await redispatchLost(server.ctx, 10), 0, 'looked at once per period');
      const handed = (await poll(1)).filter((m) => m.type === 'job');
      assert.deepEqual(handed.map((m) => (m as { job: { id: string } }).job.id), [job]);
      const log = await alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${job}/log`);
      assert.ok(log.lines.some((l) => /queued again: its place in the queue was lost/.test(l.message)), JSON.stringify(log.lines));
      await alice.json('POST', `/api/jobs/${job}/cancel`, undefined, 202);
    });

    test('a waiting job whose item is still queued gets no second one', async () => {
      const job = (await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202)).id;
      await sleep(20);
      assert.equal(await redispatchLost(server.ctx, 10), 0);
      const items = await server.ctx.queue.fetch(agentId, 5);
      assert.deepEqual(items.map((i) => i.jobId), [job], 'one item');
      await server.ctx.queue.complete(agentId, items.map((i) => i.id));
      await alice.json('POST', `/api/jobs/${job}/cancel`, undefined, 202);
    });
  });
}
