// A pause or cancel can reach an agent before the job it is about: the server sends a job down the
// socket once it has claimed it, and a control through its event log, which may be read and sent first
// (the dashboard shows the job running as soon as it is claimed). The agent must apply it when the job
// arrives, not drop it (the job would then run on while the dashboard waits for it to pause).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { JobRunner } from '../src/agent/runner.ts';
import type { ServerClient } from '../src/agent/client.ts';
import type { FromAgent, JobAssignment } from '../src/agent/protocol.ts';
import { tempDir } from './helpers/cli.ts';

function backupJob(dir: string, id: string): JobAssignment {
  const source = path.join(dir, 'src');
  fs.mkdirSync(source, { recursive: true });
  fs.writeFileSync(path.join(source, 'a.txt'), 'hello');
  return {
    id,
    kind: 'backup',
    attempt: 1,
    params: { planId: 'p1', planName: 'home', paths: [source], excludes: [], tags: [], oneFileSystem: false, destinations: [{ id: 'd1', name: 'disk', kind: 'location', location: path.join(dir, 'repo'), limits: {} }] },
  } as JobAssignment;
}

function runner(sent: FromAgent[]): JobRunner {
  return new JobRunner({
    client: {} as ServerClient,
    capacity: 2,
    passphrase: async () => 'pw',
    send: (m) => void sent.push(m),
    describeError: (err) => String((err as Error).message),
    isRetryable: () => false,
  });
}

const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 600 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ok(), `timed out waiting for ${what}`);
};

test('a pause that arrives before its job pauses the job when it arrives; resume lets it complete', async (t) => {
  const dir = tempDir(t);
  const sent: FromAgent[] = [];
  const agent = runner(sent);
  agent.control('j1', 'pause');
  agent.start(backupJob(dir, 'j1'));
  await until('the job to pause', () => sent.some((m) => m.type === 'paused' && m.jobId === 'j1'));
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!sent.some((m) => m.type === 'finished'), 'a paused job does not finish');
  agent.control('j1', 'resume');
  await until('the job to finish', () => sent.some((m) => m.type === 'finished'));
  assert.equal((sent.find((m) => m.type === 'finished') as { outcome: string }).outcome, 'completed');
  await agent.stopAll();
});

test('a cancel that arrives before its job ends the job cancelled, with no snapshot', async (t) => {
  const dir = tempDir(t);
  const sent: FromAgent[] = [];
  const agent = runner(sent);
  agent.control('j2', 'cancel');
  agent.start(backupJob(dir, 'j2'));
  await until('the job to end', () => sent.some((m) => m.type === 'finished'));
  assert.equal((sent.find((m) => m.type === 'finished') as { outcome: string }).outcome, 'cancelled');
  assert.ok(!fs.existsSync(path.join(dir, 'repo', 'snapshots')) || fs.readdirSync(path.join(dir, 'repo', 'snapshots')).length === 0);
  await agent.stopAll();
});
