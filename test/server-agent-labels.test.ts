// Agent labels: a real agent registers with its --label flags, the owner edits them through the API
// (checked, sorted, without duplicates), an agent restarted without --label keeps the labels set on the
// server, and nobody else sees or changes them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, until } from './helpers/agent.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let alice: Client;
let bob: Client;
let key: string;
let dir: string;

interface AgentView {
  readonly id: string;
  readonly status: string;
  readonly labels: string[];
}

before(async () => {
  server = await startTestServer({ listen: true });
  alice = await new Client(server.app).signup('alice@example.com');
  await alice.json('PUT', '/api/admin/settings', { signup: 'open' });
  bob = await new Client(server.app).signup('bob@example.com');
  key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'nas' }, 201)).key;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-labels-'));
});
after(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an agent registers with its --label flags; the owner edits them; a restart without --label keeps them; a restart with --label sets them', async () => {
  const agentDir = path.join(dir, 'agent');
  const online = async (labels: string[]) =>
    until(`the agent online with labels ${labels}`, async () => {
      const [a] = await alice.json<AgentView[]>('GET', '/api/agents');
      return a && a.status === 'online' && JSON.stringify(a.labels) === JSON.stringify(labels) ? a : undefined;
    });
  let agent = startAgent({ server: server.url, key, dir: agentDir, labels: ['rack-2', 'nas', 'nas'] });
  try {
    const a = await online(['nas', 'rack-2']);
    const patched = await alice.json<AgentView>('PATCH', `/api/agents/${a.id}`, { labels: ['photos', 'nas'] });
    assert.deepEqual(patched.labels, ['nas', 'photos']);
    await agent.stop();
    agent = startAgent({ server: server.url, key, dir: agentDir });
    assert.equal((await online(['nas', 'photos'])).id, a.id, 'the same agent, its labels kept');
    await agent.stop();
    agent = startAgent({ server: server.url, key, dir: agentDir, labels: ['big'] });
    await online(['big']);
  } finally {
    await agent.stop();
  }
});

test('bad labels are refused with one line naming the label, and nothing changes', async () => {
  const [a] = await alice.json<AgentView[]>('GET', '/api/agents');
  const before = a!.labels;
  for (const labels of [['../etc'], [''], ['a b'], ['x'.repeat(51)], Array.from({ length: 21 }, (_, i) => `l${i}`), [{}]]) {
    const res = await alice.request('PATCH', `/api/agents/${a!.id}`, { labels });
    assert.equal(res.statusCode, 400, JSON.stringify(labels));
    assert.match(res.json<{ error: string }>().error, /label|labels|must be string|must NOT have more/, JSON.stringify(labels));
  }
  assert.deepEqual((await alice.json<AgentView>('GET', `/api/agents/${a!.id}`)).labels, before);
});

test("another user neither sees nor changes an agent's labels (404)", async () => {
  const [a] = await alice.json<AgentView[]>('GET', '/api/agents');
  assert.equal((await bob.request('GET', `/api/agents/${a!.id}`)).statusCode, 404);
  assert.equal((await bob.request('PATCH', `/api/agents/${a!.id}`, { labels: ['mine'] })).statusCode, 404);
  assert.deepEqual(await bob.json('GET', '/api/agents'), []);
  assert.notDeepEqual((await alice.json<AgentView>('GET', `/api/agents/${a!.id}`)).labels, ['mine']);
});
