// A fleet plan scaled out over the agents with a label, on the embedded server: three real agent
// processes with label L, one job; its agent splits, the server's shard queue hands the shards to the
// agents by capacity, and the merged snapshot (through pre-signed URLs into s3rver) restores byte for
// byte with the tree id of a single-agent backup. One agent is killed with SIGKILL mid-shard and its
// shard completes on another. Nobody else sees the run or can claim its shards.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PROTOCOL_VERSION, type FleetShardStatus } from '../src/agent/protocol.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { Repository } from '../src/repo/repository.ts';
import { S3Store } from '../src/store/s3.ts';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { PASSWORD } from './helpers/cli.ts';
import { makeShardedTree, MiB } from './helpers/scale-out.ts';
import { Client, startAgentFleet, type AgentFleet } from './helpers/server.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

let fleet: AgentFleet;
let bob: Client;
let bobKey: string;
let bobAgent: string;
let dir: string;
let source: string;
const agents = new Map<string, AgentProcess>();

/** Several thousand files: the split makes shards of at least 64 MiB of weight (64 KiB a file), so this gives six or more. */
function makeSource(root: string): string {
  makeShardedTree(root);
  for (let top = 0; top < 6; top++) {
    const d = path.join(root, `top-${top}`, 'many');
    fs.mkdirSync(d, { recursive: true });
    for (let f = 0; f < 700; f++) fs.writeFileSync(path.join(d, `m${f}`), `${top}:${f}\n`);
    fs.writeFileSync(path.join(d, 'big.bin'), seededBytes(`fleet ${top}`, 3 * MiB));
  }
  return root;
}

before(async () => {
  // Three agents, the server and s3rver share two cores: a shard's heartbeats may come seconds late.
  fleet = await startAgentFleet({ heartbeatTimeoutSeconds: 10 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-fleet-scale-'));
  fleet.dirs.push(dir);
  source = makeSource(path.join(dir, 'source'));
  await fleet.alice.json('PUT', '/api/admin/settings', { signup: 'open' });
  bob = await new Client(fleet.server.app).signup('bob@example.com');
  bobKey = (await bob.json<{ key: string }>('POST', '/api/keys', { name: 'b' }, 201)).key;
  // Bob's agent has the label too: it must get nothing of Alice's.
  bobAgent = (await fleet.server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${bobKey}` }, payload: { protocol: PROTOCOL_VERSION, hostname: 'h', os: 'Linux', version: '0.1.0', capacity: 4, labels: ['nas'] } })).json().agentId;
  for (const name of ['a', 'b', 'c']) {
    const agent = startAgent({ server: fleet.server.url, key: fleet.key, dir: path.join(dir, `agent-${name}`), capacity: 1, labels: ['nas'] });
    fleet.agents.push(agent);
    await until(`agent ${name} online`, async () => {
      const list = await fleet.alice.json<{ id: string; status: string }[]>('GET', '/api/agents');
      const fresh = list.find((a) => a.status === 'online' && !agents.has(a.id));
      if (fresh) agents.set(fresh.id, agent);
      return fresh;
    });
  }
});
after(() => fleet.close());

/** The objects of Alice's repository, read with the server's credentials and the passphrase (which only agents and this test hold). */
async function aliceRepository(): Promise<Repository> {
  const store = new S3Store(`s3:${fleet.s3.endpoint}/${fleet.s3.bucket}/fleet/users/${fleet.alice.userId}`, { env: { AWS_ACCESS_KEY_ID: fleet.s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: fleet.s3.credentials.secretAccessKey } });
  const repo = await Repository.open([store], PASSWORD);
  await repo.loadIndex();
  return repo;
}

async function sourceTree(repo: Repository, snapshotId: string): Promise<string> {
  const stored = (await repo.listSnapshots()).find((s) => s.id === snapshotId)!;
  return (await (await SnapshotView.open(repo, stored.snapshot)).find(source)).tree!.toString('hex');
}

const shardLines = (agent: AgentProcess): string[] => agent.output().split('\n').filter((l) => /scaled-out run .*: shard \d+/.test(l));

test('a plan with workerLabel runs as one job whose shards spread over the agents; one SIGKILLed mid-shard loses its shard to another; the snapshot restores byte for byte with the tree id of a single-agent backup', async () => {
  const { alice, destinationId } = fleet;
  const [coordinator, , victim] = [...agents.keys()];
  // The victim uploads slowly, so it is surely in the middle of a shard when it is killed.
  await alice.json('PATCH', `/api/agents/${victim}`, { uploadLimit: 1024 * 1024 });
  const plan = await alice.json<{ id: string; workerLabel: string }>('POST', '/api/plans', { name: 'share', agentId: coordinator, paths: [source], destinations: [destinationId], workerLabel: 'nas' }, 201);
  assert.equal(plan.workerLabel, 'nas');
  const job = await alice.json<{ id: string; params: { scaleOut: { workers: number; label: string } } }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
  assert.deepEqual(job.params.scaleOut, { workers: 3, label: 'nas' });

  // Mid-shard: the victim's heartbeats say it has read part of its shard.
  const seen: FleetShardStatus[] = [];
  const running = await until(
    'the victim agent in the middle of a shard',
    async () => {
      const { shards } = await alice.json<{ shards: FleetShardStatus | null }>('GET', `/api/jobs/${job.id}/shards`);
      if (shards) seen.push(shards);
      return shards?.running.find((r) => r.agentId === victim && r.bytesDone > 0);
    },
    120_000,
  );
  agents.get(victim)!.child.kill('SIGKILL');
  const run = /scaled-out run ([\w-]+): working/.exec(agents.get(coordinator)!.output())![1]!;
  await bobSeesNothing(job.id, run);
  const first = seen.find((s) => s.waiting.length > 0);
  assert.ok(first, 'the dashboard saw shards waiting');
  assert.ok(first.waiting.every((w) => w.bytes > 0 && w.files > 0), 'with their sizes');

  const done = await fleet.finished(job.id, 240_000);
  const log = await alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${job.id}/log`);
  assert.equal(done.status, 'completed', `${done.error}\n${log.lines.map((l) => l.message).join('\n')}\n${[...agents.values()].map((a) => a.output()).join('\n')}`);
  assert.ok(done.snapshotId);
  const survivors = [...agents.entries()].filter(([id]) => id !== victim);
  const retaken = survivors.flatMap(([, a]) => shardLines(a)).filter((l) => l.includes(`shard ${running.index + 1} (attempt 2)`));
  assert.equal(retaken.length, 1, `shard ${running.index + 1} was taken over by another agent: ${survivors.map(([, a]) => shardLines(a).join('\n')).join('\n')}`);
  const workersWithShards = [...agents.values()].filter((a) => shardLines(a).length > 0);
  assert.ok(workersWithShards.length >= 2, 'at least two agents backed up shards');
  await until('the run to go with its job', async () => (await alice.json<{ shards: unknown }>('GET', `/api/jobs/${job.id}/shards`)).shards === null);

  const target = path.join(dir, 'restored');
  const restore = await alice.json<{ id: string }>('POST', '/api/restores', { agentId: coordinator, destinationId, snapshot: done.snapshotId, target }, 202);
  const restored = await fleet.finished(restore.id, 120_000);
  assert.equal(restored.status, 'completed', restored.error ?? '');
  assert.deepEqual(treeDifferences(source, path.join(target, source)), []);

  // The same tree backed up by one agent, without workers: the same tree id.
  const single = await alice.json<{ id: string }>('POST', '/api/plans', { name: 'single', agentId: coordinator, paths: [source], destinations: [destinationId] }, 201);
  const singleJob = await alice.json<{ id: string }>('POST', `/api/plans/${single.id}/run`, undefined, 202);
  const singleDone = await fleet.finished(singleJob.id, 120_000);
  assert.equal(singleDone.status, 'completed', singleDone.error ?? '');
  const repo = await aliceRepository();
  try {
    assert.equal(await sourceTree(repo, done.snapshotId), await sourceTree(repo, singleDone.snapshotId!));
  } finally {
    await repo.close();
  }
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
