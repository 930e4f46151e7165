// The dashboard's snapshot routes against a real agent process (it holds the passphrase) backing up to
// s3rver through pre-signed URLs and to a folder it opens itself: the list with the plan of each
// snapshot, one directory per request with pages, a diff, a tar of chosen paths streamed from the agent,
// a test-write through the agent, and what is refused: another user's resources, an offline agent, a
// path not in the snapshot, a used download link, an upload nobody waits for.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let s3: S3Server;
let server: TestServer;
let alice: Client;
let bob: Client;
let agent: AgentProcess;
let agentId: string;
let key: string;
let bucketId: string;
let folderId: string;
let src: string;
let dir: string;
const snapshots: string[] = [];

async function finished(id: string) {
  return until(`job ${id} to finish`, async () => {
    const j = await alice.json<{ status: string; snapshotId: string | null; error: string | null }>('GET', `/api/jobs/${id}`);
    return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  }, 60_000);
}

before(async () => {
  s3 = await startS3Server('browse');
  server = await startTestServer({ listen: true, settings: { heartbeatTimeoutSeconds: 3, heartbeatIntervalSeconds: 1 }, monitorIntervalMs: 300 });
  alice = await new Client(server.app).signup('alice@example.com');
  await server.app.inject({ method: 'PUT', url: '/api/admin/settings', headers: { cookie: alice.cookie, 'x-csrf-token': alice.csrf }, payload: { signup: 'open' } });
  bob = await new Client(server.app).signup('bob@example.com');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-browse-'));
  src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'many'), { recursive: true });
  fs.mkdirSync(path.join(src, 'docs/deep'), { recursive: true });
  fs.writeFileSync(path.join(src, 'docs/a.txt'), 'first\n');
  fs.writeFileSync(path.join(src, 'docs/deep/b.bin'), crypto.randomBytes(200_000));
  for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(src, 'many', `f${String(i).padStart(2, '0')}`), `${i}\n`);
  key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'laptop' }, 201)).key;
  bucketId = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'bucket', kind: 's3', location: `s3:${s3.endpoint}/${s3.bucket}/fleet`, ...s3.credentials }, 201)).id;
  folderId = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'folder', kind: 'location', location: path.join(dir, 'repo') }, 201)).id;
  agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent') });
  agentId = (await until('the agent to register', async () => (await alice.json<{ id: string; status: string }[]>('GET', '/api/agents')).find((a) => a.status === 'online'))).id;
  const planId = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'home', agentId, paths: [src], destinations: [bucketId, folderId] }, 201)).id;
  for (const change of [() => {}, () => fs.writeFileSync(path.join(src, 'docs/a.txt'), 'second version\n')]) {
    change();
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${planId}/run`, undefined, 202);
    const done = await finished(job.id);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    snapshots.push(done.snapshotId!);
  }
});

after(async () => {
  await agent?.stop('SIGKILL');
  await server?.close();
  await s3?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const repo = () => `destination=${bucketId}&agent=${agentId}`;
/** Where the source is inside a snapshot (its full path, or its last component in snapshots of 0.1.0's layout). */
let top = '';

describe('reading snapshots through the agent', () => {
  test('the list has every snapshot, newest first, with the plan that made it', async () => {
    const list = await alice.json<{ snapshots: { id: string; planName: string | null; totalFiles: number }[] }>('GET', `/api/snapshots?${repo()}`);
    assert.deepEqual(list.snapshots.map((s) => s.id), [...snapshots].reverse());
    assert.ok(list.snapshots.every((s) => s.planName === 'home'));
    assert.equal(list.snapshots[0]!.totalFiles, 32);
    const root = await alice.json<{ entries: { name: string; type: string }[] }>('GET', `/api/snapshots/${snapshots[0]}/tree?${repo()}&path=/`);
    // Walk down from the top to the source (its path is the whole path, or only its name in older snapshots).
    top = '';
    for (let entries = root.entries; entries.length === 1 && entries[0]!.type === 'dir' && !entries.some((e) => e.name === 'docs'); ) {
      top += `/${entries[0]!.name}`;
      entries = (await alice.json<{ entries: { name: string; type: string }[] }>('GET', `/api/snapshots/${snapshots[0]}/tree?${repo()}&path=${encodeURIComponent(top)}`)).entries;
    }
    assert.ok(top.endsWith('/src'), top);
  });

  test('a directory is one request, in pages that continue after a name', async () => {
    const first = await alice.json<{ path: string; entries: { name: string; type: string; size: number }[]; next?: string; total: number; offset: number }>('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=${encodeURIComponent(`${top}/many`)}&limit=12`);
    assert.equal(first.total, 30);
    assert.deepEqual(first.entries.map((e) => e.name), Array.from({ length: 12 }, (_, i) => `f${String(i).padStart(2, '0')}`));
    assert.equal(first.next, 'f11');
    const rest = await alice.json<{ entries: { name: string }[]; next?: string }>('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=${encodeURIComponent(`${top}/many`)}&after=${first.next}&limit=1000`);
    assert.equal(rest.entries.length, 18);
    assert.equal(rest.next, undefined);
    assert.equal(first.offset, 0);
    const filtered = await alice.json<{ entries: { name: string }[]; next?: string; total: number; matches: number; filter: string; offset: number }>('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=${encodeURIComponent(`${top}/many`)}&filter=F1&limit=4`);
    assert.deepEqual([filtered.entries.map((e) => e.name), filtered.total, filtered.matches, filtered.filter, filtered.next], [['f10', 'f11', 'f12', 'f13'], 30, 10, 'F1', 'f13'], 'the names holding it, in any case, in pages');
    const filteredRest = await alice.json<{ entries: { name: string }[]; next?: string; offset: number }>('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=${encodeURIComponent(`${top}/many`)}&filter=f1&after=f13&limit=4`);
    assert.deepEqual([filteredRest.entries.map((e) => e.name), filteredRest.offset, filteredRest.next], [['f14', 'f15', 'f16', 'f17'], 4, 'f17']);
    const none = await alice.json<{ entries: unknown[]; matches: number }>('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=${encodeURIComponent(`${top}/many`)}&filter=nothing-like-it`);
    assert.deepEqual([none.entries, none.matches], [[], 0]);
    const docs = await alice.json<{ entries: { name: string; type: string; size: number }[] }>('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=${encodeURIComponent(`${top}/docs`)}`);
    assert.deepEqual(docs.entries.map((e) => [e.name, e.type, e.size]), [['a.txt', 'file', 15], ['deep', 'dir', 0]]);
  });

  test('a diff lists what changed between two snapshots', async () => {
    const diff = await alice.json<{ changes: { kind: string; path: string }[]; counts: Record<string, number>; truncated: boolean }>('GET', `/api/snapshots/${snapshots[0]}/diff?${repo()}&to=${snapshots[1]}`);
    assert.ok(diff.changes.some((c) => c.kind === 'M' && c.path.endsWith('/docs/a.txt')), JSON.stringify(diff.changes));
    assert.equal(diff.counts.M, 1);
    assert.equal(diff.truncated, false);
  });

  test('chosen files and folders download as one tar, streamed from the agent', async () => {
    const prepared = await alice.json<{ url: string }>('POST', `/api/snapshots/${snapshots[1]}/download`, { destination: bucketId, agent: agentId, paths: [`${top}/docs`, `${top}/many/f03`] });
    const res = await fetch(new URL(prepared.url, server.url), { headers: { cookie: alice.cookie } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition') ?? '', /attachment; filename="coffer-[0-9a-f]{8}-2-items\.tar"/);
    const tarFile = path.join(dir, 'download.tar');
    fs.writeFileSync(tarFile, Buffer.from(await res.arrayBuffer()));
    const out = path.join(dir, 'untarred');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xf', tarFile, '-C', out]);
    assert.equal(fs.readFileSync(path.join(out, 'docs/a.txt'), 'utf8'), 'second version\n');
    assert.deepEqual(fs.readFileSync(path.join(out, 'docs/deep/b.bin')), fs.readFileSync(path.join(src, 'docs/deep/b.bin')));
    assert.equal(fs.readFileSync(path.join(out, 'f03'), 'utf8'), '3\n');
    const again = await fetch(new URL(prepared.url, server.url), { headers: { cookie: alice.cookie } });
    assert.equal(again.status, 404, 'a download link is used once');
  });

  test('a folder the agent opens itself is test-written by the agent', async () => {
    const result = await alice.json<{ ok: boolean; ms: number }>('POST', `/api/agents/${agentId}/test-destination`, { destinationId: folderId });
    assert.equal(result.ok, true);
    const list = await alice.json<{ snapshots: unknown[] }>('GET', `/api/snapshots?destination=${folderId}&agent=${agentId}`);
    assert.equal(list.snapshots.length, 2, 'and its snapshots are listed too');
  });
});

describe('a plan with a streamed source and hooks, as in a config file', () => {
  test('the agent runs the hooks around the backup and stores the command output in the snapshot', async () => {
    const marks = path.join(dir, 'marks');
    const plan = await alice.json<{ id: string; sources: unknown[]; hooks: Record<string, unknown>; retention: Record<string, number> }>(
      'POST',
      '/api/plans',
      {
        name: 'dumps',
        agentId,
        paths: [],
        destinations: [folderId],
        sources: [{ type: 'command', command: "printf 'dumped by %s' coffer", filename: 'dump.txt' }],
        hooks: { before: { command: `echo "before $COFFER_PLAN $COFFER_JOB_ID" >> ${marks}` }, onSuccess: `echo "success $COFFER_SNAPSHOT_ID" >> ${marks}`, after: { command: `echo "after $COFFER_STATUS" >> ${marks}`, timeout: '30s' } },
        retention: { keepDaily: 7, keepLast: 3 },
      },
      201,
    );
    assert.deepEqual(plan.retention, { keepDaily: 7, keepLast: 3 });
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
    const done = await finished(job.id);
    assert.equal(done.status, 'completed', done.error ?? agent.output());
    assert.deepEqual(fs.readFileSync(marks, 'utf8').trim().split('\n'), [`before dumps ${job.id}`, `success ${done.snapshotId}`, 'after completed']);
    const root = await alice.json<{ entries: { name: string; size: number }[] }>('GET', `/api/snapshots/${done.snapshotId}/tree?destination=${folderId}&agent=${agentId}&path=/`);
    assert.deepEqual(root.entries.map((e) => [e.name, e.size]), [['dump.txt', 'dumped by coffer'.length]]);
  });

  test("a failing before-hook fails the agent's run, and onFailure and after still run (the daemon's order)", async () => {
    const marks = path.join(dir, 'failed-marks');
    const note = (hook: string) => `echo "${hook} \${COFFER_STATUS:-}" >> ${marks}`;
    const plan = await alice.json<{ id: string }>(
      'POST',
      '/api/plans',
      { name: 'hooked', agentId, paths: [path.join(dir, 'missing-is-fine')], destinations: [folderId], hooks: { before: 'echo "the database is down" >&2; exit 2', onSuccess: note('onSuccess'), onFailure: note('onFailure'), after: note('after') } },
      201,
    );
    const job = await alice.json<{ id: string }>('POST', `/api/plans/${plan.id}/run`, undefined, 202);
    const done = await finished(job.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error, 'the before hook failed (exit 2): the database is down');
    const lines = fs.readFileSync(marks, 'utf8').trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['onFailure failed', 'after failed'], 'each attempt: onFailure, then after');
  });

  test('a bad source, hook or retention is refused naming its field', async () => {
    const base = { name: 'bad', agentId, paths: ['/tmp'], destinations: [folderId] };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ sources: [{ type: 'postgres' }] }, /^sources\.0\.database: /],
      [{ sources: [{ type: 'command', command: 'x', filename: 'a/b' }] }, /^sources\.0\.filename: .*without "\/"/],
      [{ sources: [{ type: 'command', command: 'x', filename: 'a' }, { type: 'command', command: 'y', filename: 'a' }] }, /^sources\.1\.filename: two sources/],
      [{ hooks: { before: { command: 'x', timeout: 'soon' } } }, /^hooks\.before\.timeout: not a duration/],
      [{ notify: { email: ['not-an-address'] } }, /^notify\.email\.0: /],
      [{ retention: { keepDaily: 1.5 } }, /^retention\.keepDaily: /],
      [{ retention: { keepForever: 1 } }, /^retention: /],
      [{ paths: [] }, /^paths: give at least one path/],
    ];
    for (const [extra, message] of cases) {
      const res = await alice.request('POST', '/api/plans', { ...base, ...extra });
      assert.equal(res.statusCode, 400, JSON.stringify(extra));
      assert.match(res.json().error, message, JSON.stringify(extra));
    }
  });
});

describe('what is refused', () => {
  test('a path that is not in the snapshot, or not a directory, says so', async () => {
    const missing = await alice.request('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=/no/such/dir`);
    assert.equal(missing.statusCode, 502);
    assert.match(missing.json().error, /^agent: .*\/no.* is not in the snapshot/);
    const file = await alice.request('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=${encodeURIComponent(`${top}/docs/a.txt`)}`);
    assert.match(file.json().error, /is not a directory/);
    const relative = await alice.request('GET', `/api/snapshots/${snapshots[1]}/tree?${repo()}&path=docs`);
    assert.equal(relative.statusCode, 400);
    const notAnId = await alice.request('GET', `/api/snapshots/zz/tree?${repo()}`);
    assert.match(notAnId.json().error, /"zz" is not a snapshot id/);
  });

  test("another user gets 404 for the first user's destination, agent and download links", async () => {
    for (const url of [`/api/snapshots?${repo()}`, `/api/snapshots/${snapshots[0]}/tree?${repo()}&path=/`, `/api/snapshots/${snapshots[0]}/diff?${repo()}&to=${snapshots[1]}`]) {
      const res = await bob.request('GET', url);
      assert.equal(res.statusCode, 404, url);
    }
    const download = await bob.request('POST', `/api/snapshots/${snapshots[0]}/download`, { destination: bucketId, agent: agentId, paths: ['/x'] });
    assert.equal(download.statusCode, 404);
    const test2 = await bob.request('POST', `/api/agents/${agentId}/test-destination`, { destinationId: folderId });
    assert.equal(test2.statusCode, 404);
    const prepared = await alice.json<{ url: string }>('POST', `/api/snapshots/${snapshots[1]}/download`, { destination: bucketId, agent: agentId, paths: [`${top}/docs`] });
    assert.equal((await bob.request('GET', prepared.url)).statusCode, 404, "another user's link is nobody's");
  });

  test('an upload that no download waits for is refused, with or without a key', async () => {
    const noKey = await server.app.inject({ method: 'PUT', url: `/api/agent/uploads/${crypto.randomUUID()}`, headers: { 'content-type': 'application/x-tar' }, payload: 'x' });
    assert.equal(noKey.statusCode, 401);
    const unknown = await server.app.inject({ method: 'PUT', url: `/api/agent/uploads/${crypto.randomUUID()}`, headers: { authorization: `Bearer ${key}`, 'x-coffer-agent': agentId, 'content-type': 'application/x-tar' }, payload: 'x' });
    assert.equal(unknown.statusCode, 404);
    assert.match(unknown.json().error, /no download is waiting/);
  });

  test('an offline agent is named, with what to do', async () => {
    await agent.stop('SIGKILL');
    await until('the agent to go offline', async () => (await alice.json<{ status: string }>('GET', `/api/agents/${agentId}`)).status === 'offline', 15_000);
    const res = await alice.request('GET', `/api/snapshots?${repo()}`);
    assert.equal(res.statusCode, 409);
    assert.match(res.json().error, /is offline; .*choose an online one/);
  });
});
