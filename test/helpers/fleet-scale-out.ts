// A fleet plan scaled out over the agents with a label (test/server-scale-out*.test.ts): three real agent
// processes with label L, one job; its agent splits, the server's shard queue hands the shards to the
// agents by capacity, and the merged snapshot (through pre-signed URLs into s3rver) restores byte for
// byte with the tree id of a single-agent backup. One agent is killed with SIGKILL mid-shard and its
// shard completes on another.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { FleetShardStatus } from '../../src/agent/protocol.ts';
import { SnapshotView } from '../../src/engine/snapshot-view.ts';
import { Repository } from '../../src/repo/repository.ts';
import { S3Store } from '../../src/store/s3.ts';
import { startAgent, until, type AgentProcess } from './agent.ts';
import { PASSWORD } from './cli.ts';
import { makeShardedTree, MiB } from './scale-out.ts';
import type { AgentFleet } from './server.ts';
import { seededBytes, treeDifferences } from './tree.ts';

/** Several thousand files: the split makes shards of at least 64 MiB of weight (64 KiB a file), so this gives six or more. */
export function makeFleetSource(root: string): string {
  makeShardedTree(root);
  for (let top = 0; top < 6; top++) {
    const d = path.join(root, `top-${top}`, 'many');
    fs.mkdirSync(d, { recursive: true });
    for (let f = 0; f < 700; f++) fs.writeFileSync(path.join(d, `m${f}`), `${top}:${f}\n`);
    fs.writeFileSync(path.join(d, 'big.bin'), seededBytes(`fleet ${top}`, 3 * MiB));
  }
  return root;
}

/** Three agents of Alice's with the label 'nas', each connected to the server `servers[i % servers.length]`; by agent id. */
export async function startLabelledAgents(fleet: AgentFleet, dir: string, servers: readonly string[]): Promise<Map<string, AgentProcess>> {
  const agents = new Map<string, AgentProcess>();
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    const agent = startAgent({ server: servers[i % servers.length]!, key: fleet.key, dir: path.join(dir, `agent-${name}`), capacity: 1, labels: ['nas'] });
    fleet.agents.push(agent);
    await until(`agent ${name} online`, async () => {
      const list = await fleet.alice.json<{ id: string; status: string }[]>('GET', '/api/agents');
      const fresh = list.find((a) => a.status === 'online' && !agents.has(a.id));
      if (fresh) agents.set(fresh.id, agent);
      return fresh;
    });
  }
  return agents;
}

export const shardLines = (agent: AgentProcess): string[] => agent.output().split('\n').filter((l) => /scaled-out run .*: shard \d+/.test(l));

/**
 * The scenario: the first agent coordinates, the third is killed mid-shard (`isolation` runs then, with
 * the job and its run). Returns the agents that backed up shards.
 */
export async function runLabelledPlan(fleet: AgentFleet, agents: ReadonlyMap<string, AgentProcess>, dir: string, source: string, isolation: (jobId: string, run: string) => Promise<void>): Promise<AgentProcess[]> {
  const { alice, destinationId } = fleet;
  const [coordinator, , victim] = [...agents.keys()] as [string, string, string];
  // The victim uploads slowly, so it is surely in the middle of a shard when it is killed.
  await alice.json('PATCH', `/api/agents/${victim}`, { uploadLimit: 512 * 1024 });
  const plan = await alice.json<{ id: string; workerLabel: string }>('POST', '/api/plans', { name: 'share', agentId: coordinator, paths: [source], destinations: [destinationId], workerLabel: 'nas' }, 201);
  assert.equal(plan.workerLabel, 'nas');
  const job = await alice.json<{ id: string; params: { scaleOut: { workers: number; label: string } } }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
  assert.deepEqual(job.params.scaleOut, { workers: 3, label: 'nas' });

  // Mid-shard: the victim's heartbeats say it has read some of a shard holding megabytes of random data,
  // which take it many seconds to upload. (A shard of small files alone fits in the limit's burst: one
  // seen with progress may already be finished, and then no shard is taken over.)
  const seen: FleetShardStatus[] = [];
  const running = await until(
    'the victim agent in the middle of a shard',
    async () => {
      const { shards } = await alice.json<{ shards: FleetShardStatus | null }>('GET', `/api/jobs/${job.id}/shards`);
      if (shards) seen.push(shards);
      return shards?.running.find((r) => r.agentId === victim && r.bytes >= 2 * MiB && r.bytesDone > 0);
    },
    120_000,
  );
  agents.get(victim)!.child.kill('SIGKILL');
  const run = /scaled-out run ([\w-]+): working/.exec(agents.get(coordinator)!.output())![1]!;
  await isolation(job.id, run);
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
  const repo = await aliceRepository(fleet);
  try {
    assert.equal(await sourceTree(repo, source, done.snapshotId), await sourceTree(repo, source, singleDone.snapshotId!));
  } finally {
    await repo.close();
  }
  return workersWithShards;
}

/** The objects of Alice's repository, read with the server's credentials and the passphrase (which only agents and this test hold). */
async function aliceRepository(fleet: AgentFleet): Promise<Repository> {
  const store = new S3Store(`s3:${fleet.s3.endpoint}/${fleet.s3.bucket}/fleet/users/${fleet.alice.userId}`, { env: { AWS_ACCESS_KEY_ID: fleet.s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: fleet.s3.credentials.secretAccessKey } });
  const repo = await Repository.open([store], PASSWORD);
  await repo.loadIndex();
  return repo;
}

async function sourceTree(repo: Repository, source: string, snapshotId: string): Promise<string> {
  const stored = (await repo.listSnapshots()).find((s) => s.id === snapshotId)!;
  return (await (await SnapshotView.open(repo, stored.snapshot)).find(source)).tree!.toString('hex');
}
