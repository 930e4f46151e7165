// Real agent processes run their jobs through the daemon's task manager: a paused backup holds still
// in place (the same run: one before-hook, one start, its progress kept) and completes on resume with
// a snapshot that restores byte for byte; so does a paused restore; a paused job cancelled ends with no snapshot; a plan's next
// job waits for the previous one to end on the agent (its after-hook included); and a paused job keeps
// its slot, so an agent with capacity 1 starts another plan's job only once the first has ended.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { S3Store } from '../src/store/s3.ts';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { startAgentFleet, type AgentFleet, type Client } from './helpers/server.ts';

let fleet: AgentFleet;
let alice: Client;
let dir: string;

before(async () => {
  fleet = await startAgentFleet({ heartbeatTimeoutSeconds: 10 });
  alice = fleet.alice;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-agent-tasks-'));
  fleet.dirs.push(dir);
});
after(() => fleet.close());

interface Job {
  readonly id: string;
  readonly status: string;
  readonly stage: string | null;
  readonly bytesDone: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly snapshotId: string | null;
  readonly error: string | null;
}

const job = (id: string) => alice.json<Job>('GET', `/api/jobs/${id}`);
const logOf = async (id: string) => (await alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${id}/log`)).lines.map((l) => l.message);

async function snapshotsInStore(): Promise<string[]> {
  const store = new S3Store(`s3:${fleet.s3.endpoint}/${fleet.s3.bucket}/fleet/users/${alice.userId}`, { env: { AWS_ACCESS_KEY_ID: fleet.s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: fleet.s3.credentials.secretAccessKey } });
  const names: string[] = [];
  for await (const o of store.list('snapshots')) names.push(o.name);
  await store.close();
  return names;
}

/** A new agent, online, with its id. */
async function newAgent(name: string, capacity: number): Promise<{ agent: AgentProcess; agentId: string }> {
  const known = new Set((await alice.json<{ id: string }[]>('GET', '/api/agents')).map((a) => a.id));
  const agent = startAgent({ server: fleet.server.url, key: fleet.key, dir: path.join(dir, name), capacity });
  fleet.agents.push(agent);
  const found = await until(`agent ${name} online`, async () => (await alice.json<{ id: string; status: string }[]>('GET', '/api/agents')).find((a) => !known.has(a.id) && a.status === 'online'));
  return { agent, agentId: found.id };
}

function tree(name: string, files: number, size: number): string {
  const src = path.join(dir, name);
  fs.mkdirSync(src, { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), crypto.randomBytes(size));
  return src;
}

describe('an agent with capacity 1, its uploads slowed', () => {
  let agent: AgentProcess;
  let agentId: string;
  const untilAgent = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs?: number) =>
    until(what, check, timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\nthe agent said:\n${agent.output()}`);
    });
  const uploading = (id: string) => untilAgent(`job ${id} to upload`, async () => {
    const j = await job(id);
    return j.stage === 'uploading' && j.bytesDone > 0 && j;
  }, 60_000);

  before(async () => {
    ({ agent, agentId } = await newAgent('one', 1));
    // 2 MB at 150 kB/s: a pack's upload lasts about 13 s, a running backup to pause.
    await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 150_000 });
  });

  test('a paused backup holds still in place: one before-hook, one start, its progress kept; resumed, it completes and restores byte for byte', async () => {
    const src = tree('paused', 2, 1_000_000);
    const marks = path.join(dir, 'paused-marks');
    const plan = await alice.json<{ id: string }>('POST', '/api/plans', { name: 'paused', agentId, paths: [src], destinations: [fleet.destinationId], hooks: { before: `echo before >> ${marks}`, after: `echo "after $COFFER_STATUS" >> ${marks}` } }, 201);
    const { id } = await alice.json<{ id: string }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
    const atPause = await uploading(id);
    await alice.json('POST', `/api/jobs/${id}/pause`, undefined, 202);
    await untilAgent('paused', async () => (await job(id)).status === 'paused');
    await alice.json('POST', `/api/jobs/${id}/resume`, undefined, 202);
    // Progress as the server hears it, sampled from the resume to the end: it never drops back.
    const seen: number[] = [];
    const done = await untilAgent('the resumed job to finish', async () => {
      const j = await job(id);
      seen.push(j.bytesDone);
      return ['completed', 'failed', 'cancelled'].includes(j.status) && j;
    }, 90_000);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    const drops = seen.filter((b, i) => i > 0 && b < seen[i - 1]!);
    assert.deepEqual(drops, [], `progress dropped back after the resume: ${seen.join(' ')}`);
    assert.ok(seen.every((b) => b >= atPause.bytesDone), `progress went below ${atPause.bytesDone}: ${seen.join(' ')}`);
    assert.deepEqual(fs.readFileSync(marks, 'utf8').trim().split('\n'), ['before', 'after completed']);
    const log = await logOf(id);
    assert.equal(log.filter((m) => m === 'started').length, 1, log.join('\n'));
    assert.equal(log.filter((m) => m.startsWith('backing up')).length, 1, `one run, not one per resume:\n${log.join('\n')}`);
    assert.deepEqual(log.filter((m) => m === 'paused' || m === 'running'), ['paused', 'running']);

    const target = path.join(dir, 'restored');
    const restore = await alice.json<{ id: string }>('POST', '/api/restores', { agentId, destinationId: fleet.destinationId, snapshot: done.snapshotId, target }, 202);
    const restored = await fleet.finished(restore.id);
    assert.equal(restored.status, 'completed', restored.error ?? '');
    for (const name of fs.readdirSync(src)) assert.deepEqual(fs.readFileSync(path.join(target, src, name)), fs.readFileSync(path.join(src, name)), name);
  });

  test('a paused restore holds still and goes on: one run of it, the files byte for byte', async () => {
    const src = tree('to-restore', 2, 1_000_000);
    const plan = await alice.json<{ id: string }>('POST', '/api/plans', { name: 'to-restore', agentId, paths: [src], destinations: [fleet.destinationId] }, 201);
    // Backed up at full speed, restored at 150 kB/s: about 13 s of fetching to pause in.
    await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: null, downloadLimit: 150_000 });
    try {
      const backup = await alice.json<{ id: string }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
      const { snapshotId } = await fleet.finished(backup.id);
      assert.ok(snapshotId);
      const target = path.join(dir, 'restored-paused');
      const { id } = await alice.json<{ id: string }>('POST', '/api/restores', { agentId, destinationId: fleet.destinationId, snapshot: snapshotId, target }, 202);
      await untilAgent('the restore to fetch', async () => (await job(id)).stage === 'restoring');
      await alice.json('POST', `/api/jobs/${id}/pause`, undefined, 202);
      // The fetches under way finish while it is paused; with nothing left to fetch it may end so.
      const paused = await untilAgent('paused', async () => ['paused', 'completed'].includes((await job(id)).status) && job(id));
      if (paused.status === 'paused') await alice.json('POST', `/api/jobs/${id}/resume`, undefined, 202);
      const done = await fleet.finished(id, 90_000);
      assert.equal(done.status, 'completed', done.error ?? agent.output());
      const log = await logOf(id);
      assert.equal(log.filter((m) => m.startsWith('restoring snapshot')).length, 1, `one run, not one per resume:\n${log.join('\n')}`);
      for (const name of fs.readdirSync(src)) assert.deepEqual(fs.readFileSync(path.join(target, src, name)), fs.readFileSync(path.join(src, name)), name);
    } finally {
      await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 150_000, downloadLimit: null });
    }
  });

  test('a paused job cancelled ends cancelled, with no snapshot; a paused job keeps its slot: the next plan starts after it ends', async () => {
    const before = await snapshotsInStore();
    const marks = path.join(dir, 'cancel-marks');
    const first = await alice.json<{ id: string }>('POST', '/api/plans', { name: 'to-cancel', agentId, paths: [tree('to-cancel', 2, 1_000_000)], destinations: [fleet.destinationId], hooks: { after: `echo "after $COFFER_STATUS" >> ${marks}` } }, 201);
    const second = await alice.json<{ id: string }>('POST', '/api/plans', { name: 'next', agentId, paths: [tree('next', 1, 10_000)], destinations: [fleet.destinationId] }, 201);
    const a = await alice.json<{ id: string }>('POST', `/api/plans/${first.id}/run`, undefined, 202);
    await uploading(a.id);
    await alice.json('POST', `/api/jobs/${a.id}/pause`, undefined, 202);
    await untilAgent('paused', async () => (await job(a.id)).status === 'paused');

    // The agent's only slot is the paused job's: the next plan's job waits, heartbeat after heartbeat.
    const b = await alice.json<{ id: string }>('POST', `/api/plans/${second.id}/run`, undefined, 202);
    const beat = async () => (await alice.json<{ id: string; lastHeartbeatAt: number }[]>('GET', '/api/agents')).find((x) => x.id === agentId)!.lastHeartbeatAt;
    const since = await beat();
    await untilAgent('three more heartbeats', async () => (await beat()) >= since + 3000);
    assert.equal((await job(b.id)).status, 'pending', 'a paused job keeps its slot');

    await alice.json('POST', `/api/jobs/${a.id}/cancel`, undefined, 202);
    const cancelled = await fleet.finished(a.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.snapshotId, null);
    await untilAgent('the after-hook', async () => fs.existsSync(marks) && fs.readFileSync(marks, 'utf8').trim() === 'after cancelled');

    const next = await fleet.finished(b.id);
    assert.equal(next.status, 'completed', next.error ?? agent.output());
    assert.deepEqual((await snapshotsInStore()).filter((s) => !before.includes(s)), [`snapshots/${next.snapshotId}`], 'only the next plan made a snapshot');
  });

  test('a paused job stays paused when its agent was taken for gone and handed it out again; resumed, the same run completes', async () => {
    const plan = await alice.json<{ id: string }>('POST', '/api/plans', { name: 'taken-for-gone', agentId, paths: [tree('taken-for-gone', 2, 1_000_000)], destinations: [fleet.destinationId] }, 201);
    const { id } = await alice.json<{ id: string }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
    await uploading(id);
    await alice.json('POST', `/api/jobs/${id}/pause`, undefined, 202);
    await untilAgent('paused', async () => (await job(id)).status === 'paused');
    // Frozen, the agent misses its heartbeats: the server interrupts the job; thawed, it is back and
    // the server hands the job out again, to the agent that holds it paused.
    agent.child.kill('SIGSTOP');
    try {
      await untilAgent('the job interrupted', async () => (await job(id)).status === 'interrupted', 60_000);
    } finally {
      agent.child.kill('SIGCONT');
    }
    await untilAgent('the job paused again', async () => (await job(id)).status === 'paused', 60_000);
    await alice.json('POST', `/api/jobs/${id}/resume`, undefined, 202);
    const done = await fleet.finished(id, 90_000);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    const log = await logOf(id);
    assert.equal(log.filter((m) => m.startsWith('backing up')).length, 1, `one run:\n${log.join('\n')}`);
  });
});

test("a plan's next job waits on the agent until the previous one has ended, its after-hook included", async () => {
  const { agent, agentId } = await newAgent('two', 2);
  const marks = path.join(dir, 'plan-marks');
  // The before-hook lasts, so the cancel finds the job running; the after-hook lasts, so the next job
  // arrives while the cancelled one is still ending on the agent (the server counts it cancelled at once).
  const hooks = { before: `echo "start $COFFER_JOB_ID" >> ${marks}; sleep 2`, after: `sleep 2; echo "end $COFFER_JOB_ID" >> ${marks}` };
  const plan = await alice.json<{ id: string }>('POST', '/api/plans', { name: 'one-at-a-time', agentId, paths: [tree('one-at-a-time', 1, 10_000)], destinations: [fleet.destinationId], hooks }, 201);
  const a = await alice.json<{ id: string }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
  await until('the first job to start its before-hook', () => fs.existsSync(marks) && fs.readFileSync(marks, 'utf8').includes(a.id));
  await alice.json('POST', `/api/jobs/${a.id}/cancel`, undefined, 202);
  const b = await alice.json<{ id: string }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
  assert.equal((await fleet.finished(a.id)).status, 'cancelled');
  const done = await fleet.finished(b.id);
  assert.equal(done.status, 'completed', done.error ?? agent.output());
  await until('the second after-hook', () => fs.readFileSync(marks, 'utf8').includes(`end ${b.id}`));
  assert.deepEqual(fs.readFileSync(marks, 'utf8').trim().split('\n'), [`start ${a.id}`, `end ${a.id}`, `start ${b.id}`, `end ${b.id}`]);
});
