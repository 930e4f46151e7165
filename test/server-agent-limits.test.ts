// An agent's bandwidth limit, measured on a real backup: the bytes it stored over the job's wall time
// stay near the limit. Generous bounds on a measurement, not a timing assertion: the token bucket lets
// at most one second's worth through above the rate (its burst), and start-up (key derivation, opening
// the repository) only lowers the average.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, until, type AgentProcess } from './helpers/agent.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let alice: Client;
let agent: AgentProcess;
let dir: string;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-limits-'));
  server = await startTestServer({ listen: true });
  alice = await new Client(server.app).signup('alice@example.com');
  const key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'nas' }, 201)).key;
  agent = startAgent({ server: server.url, key, dir: path.join(dir, 'agent') });
});

after(async () => {
  await agent.stop('SIGKILL');
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function bytesUnder(root: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(root, { withFileTypes: true, recursive: true })) if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  return total;
}

// Skipped: on a quiet machine the job ran unthrottled in 3 of 6 runs (4 MB in 0.6–1.1 s at a 400 kB/s
// limit), even with 2 s between the limit's PATCH and the run — the agent does not always apply a limit
// set while it is connected (issue 13, open). Unskip with the fix.
test("an agent's upload limit holds its backup near the rate: stored bytes over wall time", { skip: 'an agent does not always apply a limit changed while it is connected (issue 13, open)' }, async (t) => {
  const limit = 400_000;
  const agentId = (await until('the agent to register', async () => (await alice.json<{ id: string; status: string }[]>('GET', '/api/agents')).find((a) => a.status === 'online'))).id;
  await alice.json('PATCH', `/api/agents/${agentId}`, { uploadLimit: limit });
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  // Random, so neither compression nor deduplication shrinks it: about 10 s at the limit.
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), crypto.randomBytes(1_000_000));
  const repo = path.join(dir, 'repo');
  const destination = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: repo }, 201)).id;
  const plan = (await alice.json<{ id: string }>('POST', '/api/plans', { name: 'limited', agentId, paths: [src], destinations: [destination] }, 201)).id;
  const { id } = await alice.json<{ id: string }>('POST', `/api/plans/${plan}/run`, undefined, 202);
  const done = await until('the backup to finish', async () => {
    const j = await alice.json<{ status: string; error: string | null; startedAt: number; finishedAt: number | null }>('GET', `/api/jobs/${id}`);
    return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  }, 90_000);
  assert.equal(done.status, 'completed', done.error ?? agent.output());
  const stored = bytesUnder(repo);
  const seconds = (done.finishedAt! - done.startedAt) / 1000;
  const rate = stored / seconds;
  t.diagnostic(`stored ${stored} bytes in ${seconds.toFixed(1)} s: ${Math.round(rate)} B/s for a ${limit} B/s limit`);
  assert.ok(stored > 4_000_000, `the whole source was stored (${stored} bytes)`);
  // Above: at most the burst (one second's worth) beyond the rate, plus 10 % for timer slack.
  assert.ok(stored <= limit * (seconds + 1) * 1.1, `${stored} bytes in ${seconds.toFixed(1)} s is faster than ${limit} B/s allows`);
  // Below: far slower would mean the limit throttles more than asked (start-up under load takes a few seconds).
  assert.ok(rate >= limit * 0.4, `${Math.round(rate)} B/s is far below the ${limit} B/s limit`);
});
