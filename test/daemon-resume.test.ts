// SIGTERM in the middle of a backup: the daemon exits cleanly with the job marked interrupted, and the
// next start resumes that job, reusing every pack already stored: nothing is uploaded twice.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ok, okBytes, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';
import { seededBytes } from './helpers/tree.ts';

function packBytes(repo: string): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  const data = path.join(repo, 'data');
  for (const dir of fs.existsSync(data) ? fs.readdirSync(data) : []) {
    for (const name of fs.readdirSync(path.join(data, dir))) {
      count++;
      bytes += fs.statSync(path.join(data, dir, name)).size;
    }
  }
  return { count, bytes };
}

test('SIGTERM mid-backup: the job is interrupted, resumes at the next start, and nothing is uploaded twice', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  // Six incompressible files, each a little over a pack (16 MiB): packs are sealed and uploaded while the run goes on.
  // Uploads in flight share the limit, so the first pack lands only when about three packs' worth has been
  // sent; with three files the rest landed before the SIGTERM took effect on a loaded CI machine.
  const files = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => ({ name, bytes: seededBytes(name, 17 << 20) }));
  for (const f of files) fs.writeFileSync(path.join(source, f.name), f.bytes);
  const sourceBytes = files.reduce((sum, f) => sum + f.bytes.length, 0);
  ok(['init', '--repo', repo]);
  const daemon = await DaemonProcess.start(t, {
    config: `plans:\n  big:\n    repos: [${repo}]\n    paths: [${source}]\n    limitUpload: ["12M"]\n`,
  });
  const job = await daemon.run('big');
  // Wait for a first pack to be durable, then stop the daemon as systemd would.
  const deadline = Date.now() + 120_000;
  while (packBytes(repo).count < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(packBytes(repo).count >= 1, daemon.log);
  const stopped = await daemon.stop('SIGTERM');
  assert.equal(stopped.code, 0, daemon.log);
  assert.match(daemon.log, new RegExp(`job ${job} \\(plan big\\) interrupted: the daemon stopped \\(received SIGTERM\\)`));
  const before = packBytes(repo);
  assert.ok(before.bytes < sourceBytes, 'it was stopped in the middle');
  const stored = JSON.parse(daemon.cli(['status', '--json']).stdout);
  assert.ok(stored.problems.some((p: { job: { id: number; status: string } }) => p.job.id === job && p.job.status === 'interrupted'));

  const mark = daemon.log.length;
  await daemon.launch();
  await daemon.waitFor(new RegExp(`job ${job} \\(plan big\\) was interrupted .*; it is queued to resume`), 30_000, mark);
  await daemon.waitFor(new RegExp(`job ${job} \\(plan big\\) started \\(resume\\)`), 30_000, mark);
  await daemon.waitFor(new RegExp(`job ${job} \\(plan big\\) completed`), 120_000, mark);
  await daemon.stop();

  // Random data does not compress: a pack stored twice would show as about 16 MiB too many.
  const after = packBytes(repo);
  assert.ok(after.bytes - sourceBytes < 512 * 1024, `packs hold ${after.bytes} bytes for ${sourceBytes} bytes of source`);
  ok(['check', '--repo', repo, '--read-data']);
  for (const f of files) assert.ok(okBytes(['dump', '--repo', repo, 'latest', path.join(source, f.name)]).equals(f.bytes));
});
