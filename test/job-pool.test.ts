// The worker pool of restore: workers start as jobs need them, never more than asked for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobPool } from '../src/engine/job-pool.ts';

const ECHO = new URL('./fixtures/echo-worker.ts', import.meta.url);

type Job = { job: number; delayMs: number };
type Answer = { job: number; threadId: number };

test('one job at a time starts one worker; jobs that find none idle start more, up to the count', async () => {
  const pool = new JobPool<Job, Answer>(ECHO, undefined, 'echo worker', 3);
  try {
    const sequential = new Set<number>();
    for (let i = 0; i < 4; i++) sequential.add((await pool.run((job) => ({ job: { job, delayMs: 0 } }))).threadId);
    assert.equal(sequential.size, 1, 'jobs one after another share the first worker');
    const together = await Promise.all(Array.from({ length: 8 }, () => pool.run((job) => ({ job: { job, delayMs: 50 } }))));
    assert.equal(new Set(together.map((a) => a.threadId)).size, 3, 'eight jobs at once use all three workers, and no more');
  } finally {
    await pool.close();
  }
});
