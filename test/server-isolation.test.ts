// Per-user isolation: every route of the API, walked as a second user (with that user's own session and
// API key), answers 404 for every resource of the first user, and for guessed ids, and never lists one.
// The list of routes comes from the server's own OpenAPI description, so a new route without a case
// here fails this test.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { PROTOCOL_VERSION } from '../src/agent/protocol.ts';
import { raiseAlert } from '../src/server/alerts/alerts.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let alice: Client;
let bob: Client;
let aliceKey: string;
let bobKey: string;
let bobAgent: string;
const A: Record<string, string> = {};

const hello = { protocol: PROTOCOL_VERSION, hostname: 'h', os: 'Linux', version: '0.1.0', capacity: 1 };

before(async () => {
  server = await startTestServer();
  alice = await new Client(server.app).signup('alice@example.com');
  await alice.json('PUT', '/api/admin/settings', { signup: 'open' });
  bob = await new Client(server.app).signup('bob@example.com');
  const ak = await alice.json<{ id: string; key: string }>('POST', '/api/keys', { name: 'a' }, 201);
  A.key = ak.id;
  aliceKey = ak.key;
  bobKey = (await bob.json<{ key: string }>('POST', '/api/keys', { name: 'b' }, 201)).key;
  A.agent = (await server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${aliceKey}` }, payload: hello })).json().agentId;
  bobAgent = (await server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${bobKey}` }, payload: hello })).json().agentId;
  A.destination = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'd', kind: 's3', location: 's3:http://127.0.0.1:1/bucket', accessKeyId: 'k', secretAccessKey: 's' }, 201)).id;
  A.plan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'p', agentId: A.agent, paths: ['/data'], destinations: [A.destination] }, 201)).id;
  A.job = (await alice.json<{ id: string }>('POST', `/api/plans/${A.plan}/run`, undefined, 202)).id;
  A.alert = (await raiseAlert(server.ctx, alice.userId, 'agent-offline', A.agent, 'test alert'))!.id;
});
after(() => server.close());

const guessed = crypto.randomUUID();

interface Case {
  /** Which of Alice's resources goes into {id}. */
  readonly id?: keyof typeof A;
  readonly body?: unknown;
  readonly query?: string;
  /** Sent with Bob's API key instead of his session. */
  readonly agent?: boolean;
  /** What Bob gets (default 404 with an id, else 200 with nothing of Alice's in it). */
  readonly expect?: number;
}

const CASES: Record<string, Case> = {
  'get /api/openapi.json': {},
  'get /healthz': {},
  'get /readyz': {},
  'get /api/auth/state': {},
  'post /api/auth/signup': { body: { email: 'alice@example.com', password: 'correct horse battery' }, expect: 409 },
  'post /api/auth/login': { body: { email: 'alice@example.com', password: 'not her password!' }, expect: 401 },
  'post /api/auth/logout': { expect: -1 },
  'get /api/auth/session': {},
  'post /api/auth/password': { body: { currentPassword: 'not it at all', newPassword: 'whatever it is now' }, expect: 403 },
  'get /api/admin/users': { expect: 403 },
  'post /api/admin/invitations': { body: {}, expect: 403 },
  'get /api/admin/invitations': { expect: 403 },
  'get /api/admin/settings': { expect: 403 },
  'put /api/admin/settings': { body: { signup: 'invite' }, expect: 403 },
  'get /api/keys': {},
  'post /api/keys': { body: { name: 'x' }, expect: 201 },
  'delete /api/keys/{id}': { id: 'key' },
  'get /api/agents': {},
  'get /api/agents/{id}': { id: 'agent' },
  'patch /api/agents/{id}': { id: 'agent', body: { uploadLimit: 1000 } },
  'delete /api/agents/{id}': { id: 'agent' },
  'get /api/destinations': {},
  'post /api/destinations': { body: { name: 'd', kind: 'location', location: '/backup' }, expect: 201 },
  'get /api/destinations/{id}': { id: 'destination' },
  'patch /api/destinations/{id}': { id: 'destination', body: { name: 'mine now' } },
  'delete /api/destinations/{id}': { id: 'destination' },
  'post /api/destinations/{id}/test': { id: 'destination' },
  'post /api/agent/storage/{id}/put': { id: 'destination', agent: true, body: { name: 'config', size: 1 } },
  'post /api/agent/storage/{id}/get': { id: 'destination', agent: true, body: { name: 'config' } },
  'post /api/agent/storage/{id}/stat': { id: 'destination', agent: true, body: { name: 'config' } },
  'get /api/agent/storage/{id}/list': { id: 'destination', agent: true, query: 'dir=snapshots' },
  'get /api/plans': {},
  'post /api/plans': { body: { name: 'p2', agentId: 'AGENT', paths: ['/x'], destinations: ['DESTINATION'] }, expect: 400 },
  'get /api/plans/{id}': { id: 'plan' },
  'put /api/plans/{id}': { id: 'plan', body: { paths: ['/etc'] } },
  'delete /api/plans/{id}': { id: 'plan' },
  'post /api/plans/{id}/run': { id: 'plan' },
  'put /api/plans/{id}/passphrase': { id: 'plan', body: { passphrase: 'a guess of my own' } },
  'get /api/jobs': { query: 'agent=AGENT&plan=PLAN' },
  'get /api/jobs/{id}': { id: 'job' },
  'get /api/jobs/{id}/log': { id: 'job' },
  'post /api/jobs/{id}/pause': { id: 'job' },
  'post /api/jobs/{id}/resume': { id: 'job' },
  'post /api/jobs/{id}/cancel': { id: 'job' },
  'post /api/restores': { body: { agentId: 'AGENT', destinationId: 'DESTINATION', snapshot: 'latest', target: '/tmp/x' }, expect: 404 },
  'get /api/alerts': { query: 'state=all' },
  'post /api/alerts/{id}/acknowledge': { id: 'alert' },
  'get /api/reports': { query: 'period=month' },
  'get /api/reports/email': {},
  'put /api/reports/email': { body: { period: 'week' } },
  'post /api/admin/settings/test-email': { expect: 403 },
  'get /api/events': { query: 'after=0', expect: -2 },
  'post /api/agent/register': { agent: true, body: { ...hello, agentId: 'AGENT' }, expect: 200 },
  'post /api/agent/messages': { agent: true, body: { messages: [{ type: 'finished', jobId: 'JOB', outcome: 'cancelled' }, { type: 'progress', jobId: 'JOB', progress: {} }] } },
  'get /api/agent/poll': { agent: true, query: 'agent=AGENT&wait=0' },
  'get /api/agent/ws': { agent: true, query: 'agent=AGENT', expect: -3 },
  'get /api/dashboard/overview': {},
  'get /api/dashboard/daily': { query: 'from=0&to=86400000' },
  'get /api/dashboard/pause': {},
  'put /api/dashboard/pause': { body: { paused: false } },
  'get /api/snapshots': { query: 'destination=DESTINATION&agent=AGENT', expect: 404 },
  'get /api/snapshots/{id}/tree': { id: 'job', query: 'destination=DESTINATION&agent=AGENT&path=/' },
  'get /api/snapshots/{id}/diff': { id: 'job', query: 'destination=DESTINATION&agent=AGENT&to=0123abcd' },
  'post /api/snapshots/{id}/download': { id: 'job', body: { destination: 'DESTINATION', agent: 'AGENT', paths: ['/data'] } },
  'get /api/downloads/{id}': { id: 'job' },
  'put /api/agent/uploads/{id}': { id: 'job', agent: true },
  'post /api/agents/{id}/test-destination': { id: 'agent', body: { destinationId: 'DESTINATION' } },
  'post /api/agent/shards/runs': { agent: true, body: { jobId: 'JOB', shards: [] }, expect: 404 },
  'get /api/agent/shards/runs/{id}': { id: 'job', agent: true },
  'post /api/agent/shards/claim': { agent: true, body: { run: 'JOB', capacity: 1 } },
  'post /api/agent/shards/heartbeat': { agent: true, body: { claim: 'JOB', progress: {} } },
  'post /api/agent/shards/finish': { agent: true, body: { claim: 'JOB', outcome: { ok: false, error: 'x' } } },
  'get /api/jobs/{id}/shards': { id: 'job' },
};

/** Alice's ids put in place of the markers in a body or query. */
function withAliceIds<T>(value: T): T {
  let text = JSON.stringify(value);
  for (const [name, id] of Object.entries(A)) text = text.replaceAll(name.toUpperCase(), id);
  return JSON.parse(text) as T;
}

function leaks(res: LightMyRequestResponse): string | undefined {
  return Object.entries(A).find(([, id]) => res.body.includes(id))?.[0];
}

test("every route, walked as Bob, answers 404 for Alice's resources and guessed ids and never shows one of them", async () => {
  const spec = (await server.app.inject({ url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
  const routes = Object.entries(spec.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
  const missing = routes.filter((r) => !CASES[r]);
  assert.deepEqual(missing, [], 'every route has a case in this test');
  for (const route of routes) {
    const c = CASES[route]!;
    const [method, template] = route.split(' ') as [string, string];
    if (c.expect === -1) continue; // logout: checked last, it ends Bob's session
    for (const id of c.id ? [A[c.id]!, guessed] : [undefined]) {
      const url = template.replace('{id}', id ?? '') + (c.query ? `?${withAliceIds(c.query)}` : '');
      const body = c.body === undefined ? undefined : withAliceIds(c.body);
      let res: LightMyRequestResponse;
      if (c.agent) {
        res = await server.app.inject({ method: method.toUpperCase() as 'GET', url, headers: { authorization: `Bearer ${bobKey}`, 'x-coffer-agent': bobAgent }, ...(body ? { payload: body as object } : {}) });
      } else if (c.expect === -2) {
        // SSE never ends on its own: Bob's stream is read for a moment through a real socket below.
        continue;
      } else {
        res = await bob.request(method.toUpperCase(), url, body);
      }
      const label = `${route} with ${id === guessed ? 'a guessed id' : "Alice's id"}`;
      if (c.expect === -3) {
        assert.notEqual(res.statusCode, 101, label);
        continue;
      }
      const expected = c.expect ?? (c.id ? 404 : 200);
      assert.equal(res.statusCode, expected, `${label}: ${res.body.slice(0, 200)}`);
      assert.equal(leaks(res), undefined, `${label} shows Alice's ${leaks(res)}: ${res.body.slice(0, 300)}`);
    }
  }
  // Nothing of Alice's changed hands: her plan, agent and destination are as she made them.
  const plan = await alice.json<{ paths: string[]; hasPassphrase: boolean }>('GET', `/api/plans/${A.plan}`);
  assert.deepEqual(plan.paths, ['/data']);
  assert.equal(plan.hasPassphrase, false, "Bob set no passphrase on Alice's plan");
  assert.equal((await alice.json<{ uploadLimit: number | null }>('GET', `/api/agents/${A.agent}`)).uploadLimit, null);
  assert.equal((await alice.json<{ status: string }>('GET', `/api/jobs/${A.job}`)).status, 'pending');
  const bobAgents = await bob.json<{ id: string }[]>('GET', '/api/agents');
  assert.ok(bobAgents.some((a) => a.id === bobAgent));
  assert.ok(!bobAgents.some((a) => a.id === A.agent), "registering with Alice's agent id made Bob a new agent of his own");
  assert.equal((await bob.request('POST', '/api/auth/logout')).statusCode, 200);
});

test("Bob's event stream carries none of Alice's events", async () => {
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const controller = new AbortController();
  const res = await fetch(`${url}/api/events?after=0`, { headers: { cookie: (await new Client(server.app).login('bob@example.com')).cookie }, signal: controller.signal });
  assert.equal(res.status, 200);
  await alice.json('PATCH', `/api/agents/${A.agent}`, { uploadLimit: 5000 });
  const reader = res.body!.getReader();
  let text = '';
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 300))]);
    if (chunk && !chunk.done) text += Buffer.from(chunk.value).toString();
  }
  controller.abort();
  assert.match(text, /connected/);
  for (const [name, id] of Object.entries(A)) assert.ok(!text.includes(id), `Alice's ${name} in Bob's events`);
});
