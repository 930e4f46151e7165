// A repository written by Coffer 0.1.0 (test/fixtures/repo-v1, described in docs/FORMAT.md) must stay
// readable: every later version opens it, checks it and restores the same files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeKeyFile, unwrapKeys } from '../src/format/keyfile.ts';
import { ok, tempDir } from './helpers/cli.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures/repo-v1');
const env = { COFFER_PASSWORD: 'coffer test vector' };

test('the key file unwraps to the published master keys', async () => {
  const name = fs.readdirSync(path.join(FIXTURE, 'keys'))[0]!;
  const file = decodeKeyFile(fs.readFileSync(path.join(FIXTURE, 'keys', name)), name);
  const keys = await unwrapKeys(file, 'coffer test vector', name);
  assert.equal(keys.dataKey.toString('hex'), '67ef442ebaf822d97be00dd7dbcab3e2efe2c1a27d06d27c81b7a32cc22c59ac');
  assert.equal(keys.idKey.toString('hex'), '3e29adac7826445e4648cfbe8b1bf9163f44d73a51ff844229df96c9dc866ace');
  assert.equal(keys.chunkerSeed.toString('hex'), '6a411117a906d40d12ab2fa28932ce030e4015bdf5fde1889c164043a8c2d467');
});

test('the fixture repository checks clean and restores its files', (t) => {
  // Copied so that nothing, not even a tmp folder, is ever written into the fixture.
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  fs.cpSync(FIXTURE, repo, { recursive: true });
  assert.match(ok(['check', '--repo', repo, '--read-data'], { env }).stdout, /no errors were found/);
  // Its one source, /tmp/sc/vt/tree, comes back at its full path, as new snapshots do.
  const out = path.join(dir, 'out');
  ok(['restore', '--repo', repo, 'f7b5b478', '--target', out], { env });
  const target = path.join(out, 'tmp/sc/vt');
  assert.equal(fs.readFileSync(path.join(target, 'tree/hello.txt'), 'utf8'), 'hello\n');
  assert.equal(fs.readFileSync(path.join(target, 'tree/empty'), 'utf8'), '');
  assert.equal(fs.readlinkSync(path.join(target, 'tree/link')), 'hello.txt');
  assert.equal(fs.readFileSync(path.join(target, 'tree/sub/zzz.txt'), 'utf8'), 'z'.repeat(2_000_000));
  assert.equal(fs.statSync(path.join(target, 'tree/hello.txt')).mtime.toISOString(), '2020-01-02T03:04:05.123Z');
  // The directories above the source were not recorded by 0.1.0: made with default permissions.
  assert.equal(fs.statSync(path.join(out, 'tmp/sc')).mode & 0o7777, 0o755 & ~process.umask());
});

test('paths in a 0.1.0 snapshot: the full path and the old top-level spelling both work', (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  fs.cpSync(FIXTURE, repo, { recursive: true });
  assert.deepEqual(ok(['ls', '--repo', repo, 'latest'], { env }).stdout.trim().split('\n').slice(0, 4), ['/tmp', '/tmp/sc', '/tmp/sc/vt', '/tmp/sc/vt/tree']);
  assert.equal(ok(['dump', '--repo', repo, 'latest:/tmp/sc/vt/tree/hello.txt'], { env }).stdout, 'hello\n');
  assert.equal(ok(['dump', '--repo', repo, 'latest', '/tree/hello.txt'], { env }).stdout, 'hello\n');
  const sub = path.join(dir, 'sub');
  ok(['restore', '--repo', repo, 'latest:/tree/sub', '--target', sub], { env });
  assert.equal(fs.statSync(path.join(sub, 'zzz.txt')).size, 2_000_000);
});
