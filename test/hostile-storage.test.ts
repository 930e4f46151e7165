// A compromised storage host lists names that are no repository objects ('keys/../../x'), in the hope
// that sync, replica add or a backup's catch-up copy writes them somewhere else. Every store refuses
// such names (src/store/layout.ts): nothing is written outside the repository, and the user is told.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cofferAsync, ok, tempDir } from './helpers/cli.ts';
import { startHostileS3 } from './helpers/hostile-s3.ts';
import { startHostileSftp } from './helpers/hostile-sftp.ts';

/** Every object of a local repository by name ('keys/…', 'data/ab/…'), as a storage host holds them. */
function repositoryObjects(repo: string): Map<string, Buffer> {
  const objects = new Map<string, Buffer>();
  for (const entry of fs.readdirSync(repo, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    const name = path.relative(repo, file);
    if (entry.isFile() && !name.startsWith('tmp')) objects.set(name, fs.readFileSync(file));
  }
  return objects;
}

/** A small real repository's objects, made once for every test here. */
function makeRepository(dir: string): Map<string, Buffer> {
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'alpha');
  const repo = path.join(dir, 'origin');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  return repositoryObjects(repo);
}

/** Names a hostile host lists: each would land outside a repository at dir/a/b/c/target if joined into a path. */
const CRAFTED = ['keys/../../../../escaped-key', 'data/../../x/y', 'snapshots/../../../escaped-snapshot', 'index/../../../../a/escaped-index'];
const ESCAPES = (dir: string): string[] => [
  path.join(dir, 'a/escaped-key'),
  path.join(dir, 'a/b/c/x/y'),
  path.join(dir, 'a/b/escaped-snapshot'),
  path.join(dir, 'a/escaped-index'),
];

function assertContained(dir: string, stderr: string): void {
  for (const escape of ESCAPES(dir)) assert.ok(!fs.existsSync(escape), `${escape} was written outside the repository`);
  for (const name of CRAFTED) assert.ok(stderr.includes(`ignoring "${name}"`), `no warning about ${name} in:\n${stderr}`);
}

describe('hostile storage hosts', { concurrency: true }, () => {
  let objects: Map<string, Buffer>;
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-hostile-'));
  before(() => {
    objects = makeRepository(shared);
  });
  after(() => fs.rmSync(shared, { recursive: true, force: true }));

  it('sync and replica add from a hostile S3 bucket write nothing outside the target', async (t) => {
    const dir = tempDir(t);
    const bucket = new Map([...objects].map(([name, bytes]) => [`repo/${name}`, bytes]));
    for (const name of CRAFTED) bucket.set(`repo/${name}`, Buffer.from('* * * * * root sh -c "echo owned"\n'));
    const s3 = await startHostileS3({ objects: bucket });
    t.after(() => s3.stop());

    const target = path.join(dir, 'a/b/c/target');
    const sync = await cofferAsync(['sync', '--from', s3.location('repo'), '--to', target], { env: s3.env }).done;
    assertContained(dir, sync.stderr);
    assert.equal(sync.code, 0, sync.stderr);
    assert.match(ok(['check', '--repo', target, '--read-data']).stdout, /no errors were found/);

    const replica = path.join(dir, 'a/b/c/replica');
    const add = await cofferAsync(['replica', 'add', '--repo', s3.location('repo'), replica], { env: s3.env }).done;
    assertContained(dir, add.stderr);
    assert.equal(add.code, 0, add.stderr);
    assert.match(ok(['check', '--repo', replica]).stdout, /no errors were found/);
  });

  it("a backup's catch-up copy from a hostile replica writes nothing outside the lagging one", async (t) => {
    const dir = tempDir(t);
    const bucket = new Map([...objects].map(([name, bytes]) => [`repo/${name}`, bytes]));
    for (const name of CRAFTED) bucket.set(`repo/${name}`, Buffer.from('planted'));
    const s3 = await startHostileS3({ objects: bucket });
    t.after(() => s3.stop());
    // The local replica only has the config and the key: the backup copies the rest to it first.
    const lagging = path.join(dir, 'a/b/c/target');
    for (const [name, bytes] of objects) {
      if (name !== 'config' && !name.startsWith('keys/')) continue;
      fs.mkdirSync(path.dirname(path.join(lagging, name)), { recursive: true });
      fs.writeFileSync(path.join(lagging, name), bytes);
    }
    const source = path.join(dir, 'more');
    fs.mkdirSync(source);
    fs.writeFileSync(path.join(source, 'b.txt'), 'beta');
    const backup = await cofferAsync(['backup', '--repo', lagging, '--repo', s3.location('repo'), source], { env: s3.env }).done;
    assertContained(dir, backup.stderr);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(ok(['check', '--repo', lagging, '--read-data']).stdout, /no errors were found/);
  });

  it('sync from a hostile SFTP server writes nothing outside the target', async (t) => {
    const dir = tempDir(t);
    const files = new Map([...objects].map(([name, bytes]) => [`/srv/repo/${name}`, bytes]));
    const planted = Buffer.from('planted');
    const crafted = new Map([
      ['/srv/repo/keys', [{ filename: '../../../../escaped-key', type: 'file' as const, content: planted }, { filename: 'link', type: 'symlink' as const }]],
      ['/srv/repo/data', [{ filename: '../../x/y', type: 'file' as const, content: planted }, { filename: '..', type: 'dir' as const }]],
      ['/srv/repo/snapshots', [{ filename: '../../../escaped-snapshot', type: 'file' as const, content: planted }]],
      ['/srv/repo/index', [{ filename: '../../../../a/escaped-index', type: 'file' as const, content: planted }, { filename: 'huge', type: 'file' as const, size: 2 ** 52 }]],
    ]);
    const sftp = await startHostileSftp(files, crafted);
    t.after(() => sftp.stop());
    const target = path.join(dir, 'a/b/c/target');
    const sync = await cofferAsync(['sync', '--from', sftp.location('/srv/repo'), '--to', target], { env: sftp.env }).done;
    assertContained(dir, sync.stderr);
    assert.equal(sync.code, 0, sync.stderr);
    assert.match(sync.stderr, /ignoring "keys\/link" .*symbolic link/);
    assert.match(ok(['check', '--repo', target, '--read-data']).stdout, /no errors were found/);
    assert.ok(!sftp.requests.some((r) => !r.startsWith('/srv/repo')), `the client asked for paths outside the repository: ${sftp.requests.filter((r) => !r.startsWith('/srv/repo'))}`);
  });
});
