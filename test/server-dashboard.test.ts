// The dashboard's own routes with inject(): the overview (machines protected or not and why, the last
// success per plan and destination, data protected, alerts, a 30-day series in the caller's time zone),
// the daily series, the global pause (no job handed out while it holds; the jobs it paused resume),
// and the static files of the dashboard.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { PROTOCOL_VERSION } from '../src/agent/protocol.ts';
import { raiseAlert } from '../src/server/alerts/alerts.ts';
import type { Job } from '../src/server/db/schema.ts';
import { claimJobs } from '../src/server/jobs/lifecycle.ts';
import { webRoutes } from '../src/server/web.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

const DAY = 24 * 3600_000;
const hello = { protocol: PROTOCOL_VERSION, hostname: 'laptop', os: 'Linux', version: '0.1.0', capacity: 2 };

let server: TestServer;
let alice: Client;
let bob: Client;
const ids: Record<string, string> = {};

async function register(client: Client, hostname: string): Promise<string> {
  const key = (await client.json<{ key: string }>('POST', '/api/keys', { name: hostname }, 201)).key;
  return (await server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${key}` }, payload: { ...hello, hostname } })).json().agentId;
}

/** A finished job in the history, written straight into the database at a chosen time. */
async function pastJob(fields: Partial<Job> & { plan_id: string; agent_id: string; status: Job['status']; finished_at: number }, destinations: { id: string; status: 'completed' | 'failed'; error?: string }[]): Promise<string> {
  const id = crypto.randomUUID();
  const at = fields.finished_at;
  await server.ctx.db
    .insertInto('jobs')
    .values({
      id,
      user_id: alice.userId,
      kind: 'backup',
      trigger: 'schedule',
      params: JSON.stringify({ planName: 'x' }),
      requested_at: at - 60_000,
      started_at: at - 50_000,
      updated_at: at,
      attempt: 1,
      max_retries: 3,
      next_attempt_at: null,
      stage: 'done',
      bytes_total: 0,
      bytes_done: 0,
      files_total: 0,
      files_done: 0,
      bytes_added: 0,
      snapshot_id: null,
      error: null,
      progress: null,
      ...fields,
    })
    .execute();
  for (const d of destinations) await server.ctx.db.insertInto('job_destinations').values({ job_id: id, destination_id: d.id, status: d.status, bytes_done: 0, speed: 0, error: d.error ?? null, finished_at: at }).execute();
  return id;
}

before(async () => {
  server = await startTestServer();
  alice = await new Client(server.app).signup('alice@example.com');
  await alice.json('PUT', '/api/admin/settings', { signup: 'open' });
  bob = await new Client(server.app).signup('bob@example.com');
  ids.laptop = await register(alice, 'laptop');
  ids.nas = await register(alice, 'nas');
  ids.idle = await register(alice, 'idle');
  ids.bobAgent = await register(bob, 'bobs');
  for (const name of ['one', 'two']) ids[name] = (await alice.json<{ id: string }>('POST', '/api/destinations', { name, kind: 'location', location: `/backup/${name}` }, 201)).id;
  ids.bobDest = (await bob.json<{ id: string }>('POST', '/api/destinations', { name: 'b', kind: 'location', location: '/b' }, 201)).id;
  ids.home = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'home', agentId: ids.laptop, paths: ['/home'], destinations: [ids.one, ids.two] }, 201)).id;
  ids.media = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'media', agentId: ids.nas, paths: ['/srv'], destinations: [ids.one] }, 201)).id;
  ids.bobPlan = (await bob.json<{ id: string }>('POST', '/api/plans', { name: 'bp', agentId: ids.bobAgent, paths: ['/x'], destinations: [ids.bobDest] }, 201)).id;
});
after(() => server.close());

describe('the overview', () => {
  test('machines, the last success per plan and destination, data protected and alerts', async () => {
    const now = Date.now();
    await pastJob({ plan_id: ids.home!, agent_id: ids.laptop!, status: 'completed', finished_at: now - 2 * DAY, bytes_total: 1000, files_total: 10, bytes_added: 300, snapshot_id: 'aaaa1111' }, [{ id: ids.one!, status: 'completed' }, { id: ids.two!, status: 'completed' }]);
    await pastJob({ plan_id: ids.home!, agent_id: ids.laptop!, status: 'completed', finished_at: now - DAY, bytes_total: 1200, files_total: 12, bytes_added: 200, snapshot_id: 'bbbb2222' }, [{ id: ids.one!, status: 'completed' }, { id: ids.two!, status: 'failed', error: 'disk full' }]);
    await pastJob({ plan_id: ids.media!, agent_id: ids.nas!, status: 'failed', finished_at: now - 3 * DAY, error: 'no network' }, [{ id: ids.one!, status: 'failed', error: 'timeout' }]);
    await raiseAlert(server.ctx, alice.userId, 'job-failed', ids.media!, 'media failed after 3 attempts');
    const o = await alice.json<{
      machines: { hostname: string; state: string; reason: string | null; lastSuccessAt: number | null }[];
      plans: { name: string; lastSuccessAt: number | null; destinations: { name: string; lastSuccessAt: number | null; lastStatus: string | null; lastError: string | null; lastSnapshotId: string | null }[] }[];
      bytesProtected: number;
      filesProtected: number;
      openAlerts: number;
      unacknowledgedAlerts: number;
      daily: { day: string; completed: number; failed: number; bytesAdded: number }[];
    }>('GET', '/api/dashboard/overview?tzOffset=0');
    const home = o.plans.find((p) => p.name === 'home')!;
    assert.deepEqual(
      home.destinations.map((d) => [d.name, d.lastSuccessAt !== null, d.lastStatus, d.lastError]),
      [
        ['one', true, 'completed', null],
        ['two', true, 'failed', 'disk full'],
      ],
    );
    assert.equal(home.destinations[0]!.lastSnapshotId, 'bbbb2222');
    assert.ok(home.destinations[1]!.lastSuccessAt! < home.destinations[0]!.lastSuccessAt!, 'two last succeeded the day before');
    const media = o.plans.find((p) => p.name === 'media')!;
    assert.deepEqual(media.destinations.map((d) => [d.lastSuccessAt, d.lastStatus]), [[null, 'failed']]);
    assert.equal(o.bytesProtected, 1200, "the newest completed backup of each plan");
    assert.equal(o.filesProtected, 12);
    assert.equal(o.openAlerts, 1);
    assert.equal(o.unacknowledgedAlerts, 1);
    const byHost = new Map(o.machines.map((m) => [m.hostname, m]));
    assert.equal(byHost.get('laptop')!.state, 'at-risk', 'its last run failed on a destination');
    assert.equal(byHost.get('nas')!.state, 'at-risk');
    assert.equal(byHost.get('nas')!.reason, 'media failed after 3 attempts');
    assert.deepEqual([byHost.get('idle')!.state, byHost.get('idle')!.reason], ['unprotected', 'no plan yet']);
    assert.equal(o.daily.length, 30);
    assert.equal(o.daily.reduce((a, d) => a + d.completed, 0), 2);
    assert.equal(o.daily.reduce((a, d) => a + d.failed, 0), 1);
    assert.equal(o.daily.reduce((a, d) => a + d.bytesAdded, 0), 500);
    assert.equal(o.daily.at(-1)!.day, new Date(now).toISOString().slice(0, 10), 'the series ends today');
  });

  test('a machine whose every plan succeeded everywhere, with nothing open, is protected', async () => {
    await pastJob({ plan_id: ids.home!, agent_id: ids.laptop!, status: 'completed', finished_at: Date.now() - 60_000, bytes_total: 1300 }, [{ id: ids.one!, status: 'completed' }, { id: ids.two!, status: 'completed' }]);
    const o = await alice.json<{ machines: { hostname: string; state: string }[] }>('GET', '/api/dashboard/overview');
    assert.equal(o.machines.find((m) => m.hostname === 'laptop')!.state, 'protected');
  });

  test("another user's overview has none of it", async () => {
    const o = await bob.json<{ machines: { hostname: string }[]; plans: { name: string }[]; bytesProtected: number; openAlerts: number; daily: { completed: number }[] }>('GET', '/api/dashboard/overview');
    assert.deepEqual(o.machines.map((m) => m.hostname), ['bobs']);
    assert.deepEqual(o.plans.map((p) => p.name), ['bp']);
    assert.equal(o.bytesProtected, 0);
    assert.equal(o.openAlerts, 0);
    assert.equal(o.daily.reduce((a, d) => a + d.completed, 0), 0);
  });
});

describe('the daily series', () => {
  test("days follow the caller's time zone, every day present", async () => {
    // 23:30 UTC on a day: the same day in UTC, the next day at UTC+2 (getTimezoneOffset -120).
    const base = Date.UTC(2026, 0, 10, 23, 30);
    await pastJob({ plan_id: ids.media!, agent_id: ids.nas!, status: 'completed', finished_at: base, bytes_added: 77 }, []);
    const utc = await alice.json<{ day: string; completed: number; bytesAdded: number }[]>('GET', `/api/dashboard/daily?from=${Date.UTC(2026, 0, 9)}&to=${Date.UTC(2026, 0, 12)}&tzOffset=0`);
    assert.deepEqual(utc.map((d) => [d.day, d.completed, d.bytesAdded]), [['2026-01-09', 0, 0], ['2026-01-10', 1, 77], ['2026-01-11', 0, 0]]);
    const east = await alice.json<{ day: string; completed: number }[]>('GET', `/api/dashboard/daily?from=${Date.UTC(2026, 0, 9) - 2 * 3600_000}&to=${Date.UTC(2026, 0, 12) - 2 * 3600_000}&tzOffset=-120`);
    assert.deepEqual(east.map((d) => [d.day, d.completed]), [['2026-01-09', 0], ['2026-01-10', 0], ['2026-01-11', 1]]);
  });

  test('a backwards or too long range is refused with what to ask instead', async () => {
    assert.match((await alice.request('GET', '/api/dashboard/daily?from=100&to=50')).json().error, /to must be after from/);
    assert.match((await alice.request('GET', `/api/dashboard/daily?from=0&to=${500 * DAY}`)).json().error, /at most 400 days/);
    assert.equal((await alice.request('GET', '/api/dashboard/daily?from=0&to=1&tzOffset=5000')).statusCode, 400);
  });
});

describe('the global pause', () => {
  test('no job of the user is handed out while it holds; other users are not affected; lifting it wakes the agents', async () => {
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${ids.media}/run`, undefined, 202);
    const bobJob = await bob.json<{ id: string }>('POST', `/api/plans/${ids.bobPlan}/run`, undefined, 202);
    const paused = await alice.json<{ paused: boolean; pausedAt: number }>('PUT', '/api/dashboard/pause', { paused: true });
    assert.equal(paused.paused, true);
    assert.deepEqual(await alice.json('GET', '/api/dashboard/pause'), paused);
    assert.deepEqual(await claimJobs(server.ctx, ids.nas!, 2), [], 'the paused user gets nothing');
    assert.deepEqual((await claimJobs(server.ctx, ids.bobAgent!, 2)).map((j) => j.id), [bobJob.id], "Bob's jobs go on");
    assert.equal((await bob.json<{ paused: boolean }>('GET', '/api/dashboard/pause')).paused, false);
    const before = server.ctx.events.cursor;
    await alice.json('PUT', '/api/dashboard/pause', { paused: false });
    const { events } = await server.ctx.events.since(before, {});
    assert.deepEqual(new Set(events.filter((e) => e.type === 'agent.dispatch').map((e) => e.agentId)), new Set([ids.laptop, ids.nas, ids.idle]));
    assert.deepEqual((await claimJobs(server.ctx, ids.nas!, 2)).map((j) => j.id), [job.id], 'the job waited in the queue');
  });

  test('running jobs are told to pause, and only those are resumed when it is lifted', async () => {
    const running = await alice.json<{ jobs: { id: string }[] }>('GET', `/api/jobs?status=running&agent=${ids.nas}`);
    const jobId = running.jobs[0]!.id;
    const before = server.ctx.events.cursor;
    await alice.json('PUT', '/api/dashboard/pause', { paused: true });
    const sent = (await server.ctx.events.since(before, {})).events.filter((e) => e.type === 'agent.message').map((e) => e.data);
    assert.deepEqual(sent, [{ type: 'control', jobId, action: 'pause' }]);
    // The agent reports it paused; a second job paused by hand is not the pause's to resume.
    await server.ctx.db.updateTable('jobs').set({ status: 'paused' }).where('id', '=', jobId).execute();
    const mark = server.ctx.events.cursor;
    await alice.json('PUT', '/api/dashboard/pause', { paused: false });
    const resumed = (await server.ctx.events.since(mark, {})).events.filter((e) => e.type === 'agent.message').map((e) => e.data);
    assert.deepEqual(resumed, [{ type: 'control', jobId, action: 'resume' }]);
  });
});

describe('the dashboard files', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-web-'));
    fs.mkdirSync(path.join(root, 'assets'));
    fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>Coffer</title><script type="module" src="/assets/app-1234.js"></script>');
    fs.writeFileSync(path.join(root, 'assets/app-1234.js'), 'console.log(1)');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('every page address gets index.html with its security headers; assets are cached for good; the API keeps its 404', async () => {
    const app = Fastify();
    await app.register(async (scope) => webRoutes(scope, { root }));
    for (const url of ['/', '/plans/123', '/snapshots?destination=x']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.body, /<title>Coffer<\/title>/);
      assert.match(String(res.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/);
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['cache-control'], 'no-cache');
    }
    const asset = await app.inject({ url: '/assets/app-1234.js' });
    assert.equal(asset.statusCode, 200);
    assert.match(String(asset.headers['content-type']), /javascript/);
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    const traversal = await app.inject({ url: '/assets/..%2f..%2f..%2fetc%2fpasswd' });
    assert.ok(!traversal.body.includes('root:'), 'nothing outside the assets folder');
    assert.equal((await app.inject({ url: '/assets/missing.js' })).statusCode, 404);
    const api = await app.inject({ url: '/api/nothing' });
    assert.equal(api.statusCode, 404);
    assert.deepEqual(api.json(), { error: 'no route GET /api/nothing' });
    // A rebuilt dashboard is served without a restart.
    fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>Coffer 2</title>');
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(root, 'index.html'), later, later);
    assert.match((await app.inject({ url: '/' })).body, /Coffer 2/);
    await app.close();
  });

  test('a copy without the built dashboard says how to build it', async () => {
    const app = Fastify();
    await app.register(async (scope) => webRoutes(scope, { root: path.join(root, 'nowhere') }));
    const res = await app.inject({ url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /npm run build:web/);
    await app.close();
  });
});

test('a server with a dashboard open (its event stream) still shuts down', async () => {
  const own = await startTestServer({ listen: true });
  const viewer = await new Client(own.app).signup('viewer@example.com');
  const res = await fetch(`${own.url}/api/events`, { headers: { cookie: viewer.cookie } });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const closed = own.close().then(() => 'closed');
  const outcome = await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve('still open after 5 s'), 5000))]);
  assert.equal(outcome, 'closed');
  // The dashboard sees its stream end (and its EventSource would reconnect to another server).
  for (let r = await reader.read(); !r.done; r = await reader.read());
});
