// The server's features through its API with inject() (SQLite): job retries and the job-failed alert,
// schedules, overdue plans, failing destinations, reports, live events with resume, configuration and
// TLS.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PROTOCOL_VERSION, type ToAgent } from '../src/agent/protocol.ts';
import { loadServerSettings } from '../src/server/config.ts';
import { checkOverduePlans } from '../src/server/plans/schedules.ts';
import { until } from './helpers/agent.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let alice: Client;
let key: string;
let agentId: string;
let destinationId: string;
let cursor = 0;

const agentHeaders = () => ({ authorization: `Bearer ${key}`, 'x-coffer-agent': agentId });

async function poll(free: number): Promise<ToAgent[]> {
  const res = await server.app.inject({ url: `/api/agent/poll?wait=0&free=${free}&cursor=${cursor}`, headers: agentHeaders() });
  assert.equal(res.statusCode, 200, res.body);
  cursor = res.json().cursor;
  return res.json().messages;
}

async function tell(messages: unknown[]): Promise<void> {
  const res = await server.app.inject({ method: 'POST', url: '/api/agent/messages', headers: agentHeaders(), payload: { messages } });
  assert.equal(res.statusCode, 200, res.body);
}

before(async () => {
  server = await startTestServer({ listen: true });
  alice = await new Client(server.app).signup('alice@example.com');
  key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'k' }, 201)).key;
  const welcome = (await server.app.inject({ method: 'POST', url: '/api/agent/register', headers: { authorization: `Bearer ${key}` }, payload: { protocol: PROTOCOL_VERSION, hostname: 'nas', os: 'Linux', version: '0.0.9', capacity: 1 } })).json();
  agentId = welcome.agentId;
  cursor = welcome.cursor;
  destinationId = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: '/mnt/backup' }, 201)).id;
});
after(() => server.close());

describe('jobs', () => {
  test('an older agent is flagged; a failed job is retried, then fails for good with an alert; a completed run resolves it', async () => {
    assert.equal((await alice.json<{ outdated: boolean }>('GET', `/api/agents/${agentId}`)).outdated, true);
    const plan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'docs', agentId, paths: ['/home'], destinations: [destinationId] }, 201)).id;
    assert.deepEqual((await poll(0)).map((m) => m.type), ['plans'], 'the plan is pushed to the agent');
    const job = (await alice.json<{ id: string }>('POST', `/api/plans/${plan}/run`, undefined, 202)).id;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [assigned] = await until(`attempt ${attempt} to be handed out`, async () => {
        const m = await poll(1);
        return m.length ? m : undefined;
      });
      assert.equal(assigned!.type, 'job');
      assert.equal((assigned as { job: { attempt: number } }).job.attempt, attempt);
      await tell([{ type: 'finished', jobId: job, outcome: 'failed', error: 'connection reset', retryable: true, network: true }]);
    }
    const failed = await alice.json<{ status: string; attempt: number; error: string }>('GET', `/api/jobs/${job}`);
    assert.deepEqual([failed.status, failed.attempt, failed.error], ['failed', 3, 'connection reset']);
    const alert = (await alice.json<{ kind: string; subjectId: string; message: string }[]>('GET', '/api/alerts')).find((a) => a.kind === 'job-failed')!;
    assert.equal(alert.subjectId, plan);
    assert.match(alert.message, /after 3 attempts: connection reset/);
    const log = await alice.json<{ lines: { message: string }[] }>('GET', `/api/jobs/${job}/log`);
    assert.deepEqual(log.lines.map((l) => l.message).filter((m) => /started|failed/.test(m)).slice(0, 3), ['started', 'failed: connection reset', 'attempt 2 started']);

    const second = (await alice.json<{ id: string }>('POST', `/api/plans/${plan}/run`, undefined, 202)).id;
    await until('the second run', async () => (await poll(1)).length > 0);
    await tell([
      { type: 'progress', jobId: second, progress: { stage: 'uploading', bytesDone: 10, bytesTotal: 20, filesDone: 1, filesTotal: 2, destinations: [], recentFiles: ['/home/a'] } },
      { type: 'finished', jobId: second, outcome: 'completed', snapshotId: 'ab'.repeat(32), bytesAdded: 5, filesDone: 2, bytesDone: 20, warnings: 0, destinations: [{ destinationId, committed: true }] },
    ]);
    const done = await alice.json<{ status: string; snapshotId: string; destinations: { status: string }[] }>('GET', `/api/jobs/${second}`);
    assert.deepEqual([done.status, done.snapshotId, done.destinations[0]!.status], ['completed', 'ab'.repeat(32), 'completed']);
    assert.equal((await alice.json<unknown[]>('GET', '/api/alerts')).length, 0, 'the job-failed alert resolved itself');
    // A late message about a finished job changes nothing.
    await tell([{ type: 'finished', jobId: second, outcome: 'failed', error: 'late', retryable: false, network: false }]);
    assert.equal((await alice.json<{ status: string }>('GET', `/api/jobs/${second}`)).status, 'completed');

    const history = await alice.json<{ jobs: { id: string }[]; next?: string }>('GET', `/api/jobs?plan=${plan}&limit=1`);
    assert.deepEqual(history.jobs.map((j) => j.id), [second]);
    const page2 = await alice.json<{ jobs: { id: string }[]; next?: string }>('GET', `/api/jobs?plan=${plan}&limit=1&before=${history.next}`);
    assert.deepEqual(page2.jobs.map((j) => j.id), [job]);
    assert.equal(page2.next, undefined);
    assert.equal((await alice.request('GET', '/api/jobs?status=bogus')).statusCode, 400);
    assert.equal((await alice.json<{ jobs: unknown[] }>('GET', `/api/jobs?status=failed&from=${Date.now() + 1000}`)).jobs.length, 0);

    const report = await alice.json<{ jobs: { total: number }; successRate: number; bytesAdded: number; bytesProtected: number; failures: unknown[] }>('GET', '/api/reports?period=day');
    assert.deepEqual([report.jobs.total, report.successRate, report.bytesAdded, report.bytesProtected, report.failures.length], [2, 0.5, 5, 20, 1]);
    const csv = await alice.request('GET', '/api/reports?period=week&format=csv');
    assert.match(String(csv.headers['content-type']), /text\/csv/);
    const rows = csv.body.trim().split('\r\n');
    assert.equal(rows.length, 3);
    assert.match(rows[0]!, /^id,kind,status/);
  });

  test('a running job its agent does not list in its heartbeats is queued again', async () => {
    const plan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'lost', agentId, paths: ['/z'], destinations: [destinationId] }, 201)).id;
    const job = (await alice.json<{ id: string }>('POST', `/api/plans/${plan}/run`, undefined, 202)).id;
    await until('the job to be handed out', async () => (await poll(1)).some((m) => m.type === 'job'));
    await tell([{ type: 'heartbeat', running: [] }]);
    assert.equal((await alice.json<{ status: string }>('GET', `/api/jobs/${job}`)).status, 'running', 'a job just handed out is not taken for lost');
    await server.ctx.db.updateTable('jobs').set({ updated_at: Date.now() - 60_000 }).where('id', '=', job).execute();
    await tell([{ type: 'heartbeat', running: [] }]);
    assert.equal((await alice.json<{ status: string }>('GET', `/api/jobs/${job}`)).status, 'pending');
    const again = await until('the job to be handed out again', async () => (await poll(1)).find((m) => m.type === 'job'));
    assert.equal((again as { job: { id: string } }).job.id, job);
    await tell([{ type: 'finished', jobId: job, outcome: 'cancelled' }]);
  });

  test('a schedule runs the plan on the server (one run per plan); an invalid schedule is refused next to its field', async () => {
    const bad = await alice.request('POST', '/api/plans', { name: 'bad', agentId, paths: ['/x'], destinations: [destinationId], schedule: '61 * * * *' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().error, /^schedule: /);
    const zone = await alice.request('POST', '/api/plans', { name: 'bad', agentId, paths: ['/x'], destinations: [destinationId], schedule: '0 3 * * *', timezone: 'Mars/Olympus' });
    assert.match(zone.json().error, /time zone/);
    const plan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'often', agentId, paths: ['/x'], destinations: [destinationId], schedule: '* * * * * *' }, 201)).id;
    const job = await until('the schedule to fire', async () => (await alice.json<{ jobs: { trigger: string; status: string }[] }>('GET', `/api/jobs?plan=${plan}`)).jobs[0]);
    assert.equal(job.trigger, 'schedule');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await alice.json<{ jobs: unknown[] }>('GET', `/api/jobs?plan=${plan}`)).jobs.length, 1, 'a plan with an unfinished job is not run again');
    await alice.json('PUT', `/api/plans/${plan}`, { enabled: false });
  });

  test('a plan that missed a whole period is overdue until a backup completes', async () => {
    const plan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'nightly', agentId, paths: ['/y'], destinations: [destinationId], schedule: '0 3 * * *', timezone: 'UTC' }, 201)).id;
    await server.ctx.db.updateTable('plans').set({ created_at: Date.now() - 10 * 24 * 3600_000 }).where('id', '=', plan).execute();
    await checkOverduePlans(server.ctx);
    const alert = (await alice.json<{ kind: string; subjectId: string }[]>('GET', '/api/alerts')).find((a) => a.kind === 'plan-overdue' && a.subjectId === plan);
    assert.ok(alert);
    await checkOverduePlans(server.ctx);
    const open = (await alice.json<{ kind: string; subjectId: string }[]>('GET', '/api/alerts')).filter((a) => a.kind === 'plan-overdue');
    assert.equal(open.filter((a) => a.subjectId === plan).length, 1, `one open alert per condition: ${JSON.stringify(open)}`);
  });

  test('a destination failing its test-write opens an alert', async () => {
    const dest = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'gone', kind: 's3', location: 's3:http://127.0.0.1:9/none', accessKeyId: 'a', secretAccessKey: 'b' }, 201)).id;
    const result = await alice.json<{ ok: boolean; error: string }>('POST', `/api/destinations/${dest}/test`);
    assert.equal(result.ok, false);
    const alert = (await alice.json<{ kind: string; subjectId: string }[]>('GET', '/api/alerts')).find((a) => a.kind === 'destination-failing');
    assert.equal(alert?.subjectId, dest);
    const listed = await alice.json<{ id: string; hasCredentials: boolean; lastTestError: string }[]>('GET', '/api/destinations');
    const row = listed.find((d) => d.id === dest)!;
    assert.equal(row.hasCredentials, true);
    assert.ok(row.lastTestError);
    assert.ok(!JSON.stringify(listed).includes('"b"') && !JSON.stringify(listed).includes('secretAccessKey'), 'credentials are never shown');
  });
});

describe('live events', () => {
  async function readEvents(headers: Record<string, string>, query = ''): Promise<{ text: () => string; close: () => void }> {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/api/events${query}`, { headers: { cookie: alice.cookie, ...headers }, signal: controller.signal });
    assert.equal(res.status, 200);
    let text = '';
    void (async () => {
      try {
        for await (const chunk of res.body!) text += Buffer.from(chunk).toString();
      } catch {
        // aborted
      }
    })();
    return { text: () => text, close: () => controller.abort() };
  }

  test('a dashboard that reconnects with Last-Event-ID gets what it missed, then live events; one too far behind gets a reset', async () => {
    const first = await readEvents({});
    await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 1000 });
    await until('an event', () => /event: agent.updated/.test(first.text()));
    const lastId = Number([...first.text().matchAll(/^id: (\d+)$/gm)].pop()![1]);
    first.close();
    await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 2000 });
    await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 3000 });
    const again = await readEvents({ 'last-event-id': String(lastId) });
    await until('the missed events', () => /"uploadLimit":3000/.test(again.text()));
    assert.ok(again.text().indexOf('"uploadLimit":2000') < again.text().indexOf('"uploadLimit":3000'), 'in order');
    assert.ok(!again.text().includes('"uploadLimit":1000'), 'nothing seen before is sent again');
    await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: 4000 });
    await until('live events after the missed ones', () => /"uploadLimit":4000/.test(again.text()));
    again.close();

    await server.ctx.db.deleteFrom('events').where('id', '<=', lastId + 1).execute();
    const behind = await readEvents({}, `?after=${lastId - 1}`);
    await until('a reset', () => /event: reset/.test(behind.text()));
    behind.close();
  });
});

describe('configuration and TLS', () => {
  test('settings come from the file, the environment and flags, in that order; mistakes name the setting', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-conf-'));
    const file = path.join(dir, 'server.yaml');
    fs.writeFileSync(file, 'port: 9000\nlogLevel: warn\nheartbeatTimeoutSeconds: 60\n');
    const s = loadServerSettings({ file, env: { COFFER_SERVER_PORT: '9100', DATABASE_URL: '' }, flags: { host: '0.0.0.0' } });
    assert.deepEqual([s.port, s.logLevel, s.heartbeatTimeoutSeconds, s.host], [9100, 'warn', 60, '0.0.0.0']);
    assert.throws(() => loadServerSettings({ file, env: { COFFER_SERVER_PORT: 'http' } }), /COFFER_SERVER_PORT=http is not a number/);
    assert.throws(() => loadServerSettings({ env: { DATABASE_URL: 'mysql://x' } }), /databaseUrl: a PostgreSQL URL starts with postgres/);
    assert.throws(() => loadServerSettings({ env: {}, flags: { tlsCert: 'a.pem' } }), /give both tlsCert and tlsKey/);
    fs.writeFileSync(file, 'prot: 1\n');
    assert.throws(() => loadServerSettings({ file, env: {} }), /server.yaml: .*prot/);
    fs.rmSync(dir, { recursive: true });
  });

  test('over TLS with certificate files the session cookie is Secure', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-tls-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cert = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    const tls = await startTestServer({ app: { https: { cert: fs.readFileSync(cert), key: fs.readFileSync(keyFile) } } });
    t.after(() => tls.close());
    const res = await tls.app.inject({ method: 'POST', url: '/api/auth/signup', payload: { email: 'a@example.com', password: 'correct horse battery' }, headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(res.statusCode, 201);
    // inject() has no TLS socket: the protocol Fastify sees over a real TLS connection is https.
    const listening = await tls.app.listen({ host: '127.0.0.1', port: 0 });
    assert.match(listening, /^https:/);
    const { request } = await import('node:https');
    const cookie = await new Promise<string>((resolve, reject) => {
      const req = request(`${listening}/api/auth/login`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (r) => {
        r.resume();
        resolve(String(r.headers['set-cookie']));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ email: 'a@example.com', password: 'correct horse battery' }));
    });
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /Secure/);
  });
});
