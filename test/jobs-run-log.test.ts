import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { RunLog, readJobLog, rotateRunLogs, runLogFile, type RunLogLimits } from '../src/jobs/run-log.ts';
import { ManualClock, tempDir } from './helpers/jobs.ts';

const ROOMY: RunLogLimits = { maxRuns: 100, maxTotalBytes: 1 << 30, maxRunBytes: 1 << 20 };

function writeRun(dir: string, jobId: number, run: number, lines: number, limits = ROOMY): void {
  const log = RunLog.open(dir, jobId, run, { limits });
  for (let i = 0; i < lines; i++) log.info(`line ${i}`, { i });
  log.close();
}

function names(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

test('a job log is every line of every run, in order, with its job and run', (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock();
  const first = RunLog.open(dir, 7, 1, { now: clock.now });
  first.info('backup started', { sources: ['/home/me'] });
  first.error('upload failed', { destination: 'nas', error: new Error('connection reset') });
  first.close();
  writeRun(dir, 8, 1, 1);
  const second = RunLog.open(dir, 7, 2, { now: clock.now });
  second.warn('resumed');
  second.close();

  assert.deepEqual(readJobLog(dir, 7), [
    { time: '2026-01-01T12:00:00.000Z', level: 'info', job: 7, run: 1, msg: 'backup started', sources: ['/home/me'] },
    {
      time: '2026-01-01T12:00:00.000Z',
      level: 'error',
      job: 7,
      run: 1,
      msg: 'upload failed',
      destination: 'nas',
      error: { name: 'Error', message: 'connection reset' },
    },
    { time: '2026-01-01T12:00:00.000Z', level: 'warn', job: 7, run: 2, msg: 'resumed' },
  ]);
  assert.deepEqual(readJobLog(dir, 99), []);
  assert.equal(fs.statSync(runLogFile(dir, 7, 1)).mode & 0o777, 0o600);
});

test('secrets never reach a log file', (t) => {
  const dir = tempDir(t);
  const log = RunLog.open(dir, 1, 1);
  log.info('opening s3:https://AKIAEXAMPLE:wJalrXUtnFEMI@s3.example.com/bucket', {
    password: 'correct horse',
    repo: { url: 'sftp://me:hunter2@nas/coffer', accessKeyId: 'AKIAEXAMPLE' },
  });
  log.close();
  const text = fs.readFileSync(runLogFile(dir, 1, 1), 'utf8');
  for (const secret of ['correct horse', 'hunter2', 'AKIAEXAMPLE', 'wJalrXUtnFEMI']) assert.ok(!text.includes(secret), secret);
  assert.deepEqual(readJobLog(dir, 1)[0], {
    time: readJobLog(dir, 1)[0]!.time,
    level: 'info',
    job: 1,
    run: 1,
    msg: 'opening s3:https://s3.example.com/bucket',
    password: '[redacted]',
    repo: { url: 'sftp://nas/coffer', accessKeyId: '[redacted]' },
  });
});

test('rotation keeps the newest runs within the count limit', (t) => {
  const dir = tempDir(t);
  const limits = { ...ROOMY, maxRuns: 3 };
  for (const [job, run] of [[1, 1], [1, 2], [2, 1], [10, 1]] as const) writeRun(dir, job, run, 1, limits);
  // Numeric order, not name order: job 10 is newer than job 2.
  assert.deepEqual(names(dir), ['job-1-run-2.jsonl', 'job-10-run-1.jsonl', 'job-2-run-1.jsonl']);
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a run log');
  assert.deepEqual(rotateRunLogs(dir, { ...limits, maxRuns: 2 }).map((f) => path.basename(f)), ['job-1-run-2.jsonl', 'job-2-run-1.jsonl']);
  assert.deepEqual(names(dir), ['job-10-run-1.jsonl', 'notes.txt']);
});

test('rotation keeps the older runs within the size limit', (t) => {
  const dir = tempDir(t);
  for (let job = 1; job <= 4; job++) writeRun(dir, job, 1, 20);
  const size = fs.statSync(runLogFile(dir, 1, 1)).size;
  writeRun(dir, 5, 1, 1, { ...ROOMY, maxTotalBytes: 2 * size + 10 });
  assert.deepEqual(names(dir), ['job-3-run-1.jsonl', 'job-4-run-1.jsonl', 'job-5-run-1.jsonl']);
});

test('one run log stops at its size cap with a note', (t) => {
  const dir = tempDir(t);
  writeRun(dir, 1, 1, 1000, { ...ROOMY, maxRunBytes: 2000 });
  const entries = readJobLog(dir, 1);
  assert.ok(fs.statSync(runLogFile(dir, 1, 1)).size < 2200);
  assert.equal(entries.at(-1)!.msg, 'log truncated: it reached its limit of 2000 bytes');
  assert.equal(entries.at(-2)!.msg, `line ${entries.length - 2}`);
});

test('a torn last line (crash mid-write) is skipped, the rest is read', (t) => {
  const dir = tempDir(t);
  writeRun(dir, 1, 1, 2);
  fs.appendFileSync(runLogFile(dir, 1, 1), '{"time":"2026-01-01T');
  assert.deepEqual(readJobLog(dir, 1).map((e) => e.msg), ['line 0', 'line 1']);
});
