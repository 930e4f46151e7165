// A server plan's retention (the dashboard's plans editor stores it) is applied by the agent that ran the
// backup, after each successful run, over exactly the plan's own snapshots, with a prune every
// pruneEvery-th completed run: the daemon's step (daemon/plan-retention.ts), against a real server and a
// real agent process. A retention that fails leaves the backup standing and opens an alert, which the
// next run that applies it resolves.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { jsonLines, ok } from './helpers/cli.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let alice: Client;
let agent: AgentProcess;
let agentId: string;
let dir: string;
let repo: string;
let destination: string;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-retention-'));
  repo = path.join(dir, 'repo');
  server = await startTestServer({ listen: true });
  alice = await new Client(server.app).signup('alice@example.com');
  const key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'nas' }, 201)).key;
  destination = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: repo }, 201)).id;
  agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent') });
  agentId = (await until('the agent to register', async () => (await alice.json<{ id: string; status: string }[]>('GET', '/api/agents')).find((a) => a.status === 'online'))).id;
});

after(async () => {
  await agent.stop('SIGKILL');
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function runToEnd(planId: string): Promise<{ id: string; log: string[] }> {
  const { id } = await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
  const done = await until(`job ${id} to finish`, async () => {
    const j = await alice.json<{ status: string; error: string | null }>('GET', `/api/jobs/${id}`);
    return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  }, 60_000);
  assert.equal(done.status, 'completed', done.error ?? agent.output());
  const log = await alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${id}/log`);
  return { id, log: log.lines.map((l) => l.message) };
}

describe('retention of server plans', () => {
  const photos = () => path.join(dir, 'photos');
  const music = () => path.join(dir, 'music');
  let photosPlan: string;

  before(() => {
    for (const d of [photos(), music()]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(music(), 'song.flac'), crypto.randomBytes(50_000));
  });

  test('pruneEvery without a retention policy, or below 1, is refused with the field named', async () => {
    const body = { name: 'bad', agentId, paths: [photos()], destinations: [destination] };
    assert.match((await alice.request('POST', '/api/plans', { ...body, pruneEvery: 3 })).json().error, /^pruneEvery: .*retention policy/);
    assert.equal((await alice.request('POST', '/api/plans', { ...body, retention: { keepLast: 2 }, pruneEvery: 0 })).json().error, 'pruneEvery: a number of runs, 1 or more (1 prunes after every run)');
    assert.match((await alice.request('POST', '/api/plans', { ...body, retention: { keepLast: 2 }, pruneEvery: 'often' })).json().error, /pruneEvery must be integer/);
    assert.match((await alice.request('POST', '/api/plans', { ...body, retention: { keepLats: 2 } })).json().error, /^retention: .*keepLats/);
    // Rules that keep nothing: forget refuses such a policy, so every run would only raise an alert.
    for (const retention of [{ keepLast: 0 }, { keepDaily: 0, keepTag: [] }]) {
      const res = await alice.request('POST', '/api/plans', { ...body, retention });
      assert.equal(res.statusCode, 400, JSON.stringify(retention));
      assert.match(res.json().error, /^retention: keeps no snapshot/);
    }
  });

  test("a plan takes every rule of a config file's retention (one schema), and refuses a bad one the same way", async () => {
    const body = { agentId, paths: [photos()], destinations: [destination] };
    const retention = { keepWithinDaily: '7d', keepWithinMonthly: '1y6m', keepTag: ['keep'], groupBy: 'host,tags' };
    const created = await alice.json<{ id: string }>('POST', '/api/plans', { ...body, name: 'full-policy', retention }, 201);
    assert.deepEqual((await alice.json<{ retention: unknown }>('GET', `/api/plans/${created.id}`)).retention, retention);
    assert.equal((await alice.request('POST', '/api/plans', { ...body, name: 'bad-within', retention: { keepWithinDaily: '7 days' } })).json().error, 'retention.keepWithinDaily: a duration such as 30d, 1y6m, 2w or 12h');
    await alice.json('DELETE', `/api/plans/${created.id}`);
  });

  test("after each run the plan's policy over its own snapshots only; every second run prunes", async () => {
    // Another plan on the same agent and repository backs up a superset of photos' paths: a filter
    // matching snapshots that *include* photos' path would sweep its snapshots in too.
    const everything = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'everything', agentId, paths: [photos(), music()], destinations: [destination] }, 201)).id;
    for (let i = 0; i < 2; i++) await runToEnd(everything);
    // The plans editor stores the policy as `retention`; pruneEvery beside it.
    photosPlan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'photos', agentId, paths: [photos()], destinations: [destination], retention: { keepLast: 1 }, pruneEvery: 2 }, 201)).id;
    assert.equal((await alice.json<{ pruneEvery: number }>('GET', `/api/plans/${photosPlan}`)).pruneEvery, 2);
    for (let i = 0; i < 2; i++) {
      // Each run holds data of its own: what the forgotten first snapshot held is unused afterwards.
      fs.writeFileSync(path.join(photos(), 'current.raw'), crypto.randomBytes(300_000));
      const { log } = await runToEnd(photosPlan);
      const expected = i === 0 ? /^retention forgot 0 snapshots$/ : /^retention forgot 1 snapshot, prune freed [1-9]\d* bytes$/;
      assert.ok(log.some((l) => expected.test(l)), `run ${i + 1}: ${log.join('\n')}`);
    }
    const snapshots = jsonLines<{ paths: string[] }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
    assert.equal(snapshots.filter((s) => s.paths.length === 1).length, 1, 'photos keeps its last one');
    assert.equal(snapshots.filter((s) => s.paths.length === 2).length, 2, "the other plan's snapshots are untouched");
    assert.match(ok(['check', '--repo', repo]).stdout, /no errors were found/);
  });

  test('a retention that fails leaves the backup standing and opens an alert; the next run that applies it resolves it', async (t) => {
    // forget cannot write its deletion record: the folder is made immutable (root bypasses modes, not this).
    const deletions = path.join(repo, 'deletions');
    fs.mkdirSync(deletions, { recursive: true });
    if (spawnSync('chattr', ['+i', deletions]).status !== 0) return t.skip('chattr +i is not supported on this file system');
    try {
      fs.writeFileSync(path.join(photos(), 'current.raw'), crypto.randomBytes(1000));
      const { id, log } = await runToEnd(photosPlan);
      assert.ok(log.some((l) => /^retention failed: .*; the snapshot is kept$/.test(l)), log.join('\n'));
      const j = await alice.json<{ snapshotId: string | null }>('GET', `/api/jobs/${id}`);
      assert.ok(j.snapshotId, 'the backup stands');
      const alerts = await alice.json<{ kind: string; subjectId: string; message: string }[]>('GET', '/api/alerts');
      const alert = alerts.find((a) => a.kind === 'retention-failed' && a.subjectId === photosPlan);
      assert.ok(alert, JSON.stringify(alerts));
      assert.match(alert.message, /^plan photos: retention failed: /);
    } finally {
      spawnSync('chattr', ['-i', deletions]);
    }
    const { log } = await runToEnd(photosPlan);
    assert.ok(log.some((l) => /^retention forgot 2 snapshots, prune freed \d+ bytes$/.test(l)), log.join('\n'));
    const open = await alice.json<{ kind: string }[]>('GET', '/api/alerts');
    assert.equal(open.filter((a) => a.kind === 'retention-failed').length, 0, 'resolved by the run that applied it');
  });
});
