// What Coffer writes is private to its user (a key file copied by another local user can be attacked
// offline), and a credential typed into a location never reaches the job database, logs or output.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, ok, tempDir } from './helpers/cli.ts';

function modes(dir: string): Map<string, number> {
  const out = new Map<string, number>([['.', fs.statSync(dir).mode & 0o777]]);
  for (const entry of fs.readdirSync(dir, { recursive: true })) out.set(String(entry), fs.statSync(path.join(dir, String(entry))).mode & 0o777);
  return out;
}

test('repository files are 0600 and folders 0700; jobs.db is 0600 even in a data directory that exists', (t) => {
  const dir = tempDir(t);
  const previous = process.umask(0o022);
  t.after(() => process.umask(previous));
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'alpha');
  const repo = path.join(dir, 'repo');
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { mode: 0o755 });
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, '--data-dir', data, source]);
  for (const [name, mode] of modes(repo)) {
    const isDir = fs.statSync(path.join(repo, name)).isDirectory();
    assert.equal(mode, isDir ? 0o700 : 0o600, `${name} is ${mode.toString(8)}`);
  }
  for (const file of fs.readdirSync(data).filter((f) => f.startsWith('jobs.db'))) {
    assert.equal(fs.statSync(path.join(data, file)).mode & 0o777, 0o600, `${file}`);
  }
});

test('a location with credentials is refused, and the credentials are stored and shown nowhere', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  const data = path.join(dir, 'data');
  const secret = 'wJalrXUtnFEMIsecretSECRET';
  const location = `s3:http://AKIAEXAMPLE:${secret}@127.0.0.1:9/bucket`;
  const backup = coffer(['backup', '--repo', location, '--data-dir', data, '--max-retries', '0', source]);
  assert.equal(backup.code, 1);
  const status = coffer(['status', '--json', '--data-dir', data]);
  const doctor = coffer(['doctor', '--repo', location, '--data-dir', data]);
  const logs = coffer(['logs', '--data-dir', data]);
  for (const r of [backup, status, doctor, logs]) assert.ok(!(r.stdout + r.stderr).includes(secret), `printed: ${r.stdout}${r.stderr}`);
  for (const file of fs.readdirSync(data, { recursive: true })) {
    const full = path.join(data, String(file));
    if (fs.statSync(full).isFile()) assert.ok(!fs.readFileSync(full).includes(secret), `${file} holds the secret`);
  }
  // Refused before any job is recorded; what status shows of it, if anything, is the redacted location.
  assert.match(backup.stderr, /^coffer: the S3 location must not hold credentials/);
  assert.doesNotMatch(status.stdout, /AKIAEXAMPLE/);
});
