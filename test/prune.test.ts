// `coffer prune` and `forget --prune` through the CLI, on local, S3 (s3rver) and SFTP (sshd) replicas:
// byte-identical replicas afterwards, a replica that was away brought in line without losing what a
// snapshot made there needs, markers of killed processes, unlock, and bad input.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { coffer, cofferAsync, jsonLines, ok, summaryOf, tempDir } from './helpers/cli.ts';
import { startRemotes, type Remotes } from './helpers/remotes.ts';
import { seededBytes } from './helpers/tree.ts';
import { REPOSITORY_DIRS } from '../src/engine/replicas.ts';

let remotes: Remotes;
before(async () => {
  remotes = await startRemotes();
});
after(() => remotes?.stop());

/** name → sha256 of every replicated object of a replica. */
async function digests(location: string): Promise<Map<string, string>> {
  const store = remotes.open(location);
  const out = new Map<string, string>();
  for (const dir of REPOSITORY_DIRS) for await (const o of store.list(dir)) out.set(o.name, crypto.hash('sha256', await store.get(o.name)));
  await store.close();
  return out;
}

function snapshotIds(repos: string[]): string[] {
  return (jsonLines(ok(['snapshots', ...repos.flatMap((r) => ['--repo', r]), '--json'], { env: remotes.env }).stdout).filter((l) => l.type === 'snapshot') as { id: string }[]).map((s) => s.id);
}

test('forget --prune on local, S3 and SFTP replicas frees the space at once and leaves them byte-identical', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const env = remotes.env;
  const locations = [remotes.location('local', dir), remotes.location('s3', dir), remotes.location('sftp', dir)];
  const repos = locations.flatMap((l) => ['--repo', l]);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  // Small files: kept and gone ones end up in the same packs, which then are partly unused.
  for (let i = 0; i < 12; i++) {
    fs.writeFileSync(path.join(source, `kept${i}`), seededBytes(`kept${i}`, 200_000));
    fs.writeFileSync(path.join(source, `gone${i}`), seededBytes(`gone${i}`, 200_000));
  }
  ok(['init', ...repos], { env });
  ok(['backup', ...repos, source], { env });
  for (let i = 0; i < 12; i++) fs.rmSync(path.join(source, `gone${i}`));
  fs.writeFileSync(path.join(source, 'new'), seededBytes('new', 1 << 20));
  ok(['backup', ...repos, source], { env });

  const dry = ok(['forget', ...repos, '--keep-last', '1', '--prune', '--max-unused', '0%', '--dry-run', '--json'], { env });
  const drySummaries = jsonLines(dry.stdout).filter((l) => l.type === 'summary');
  assert.equal(drySummaries.length, 2, 'one summary from forget, one from prune');
  const dryPrune = drySummaries[1] as { dryRun: boolean; deleted: { packs: number; bytes: number }; repacked: { packs: number } };
  assert.equal(dryPrune.dryRun, true);
  assert.ok(dryPrune.repacked.packs >= 1 && dryPrune.deleted.bytes > 2_000_000, JSON.stringify(dryPrune));
  assert.equal(snapshotIds(locations).length, 2, 'the dry run changed nothing');

  const real = ok(['forget', ...repos, '--keep-last', '1', '--prune', '--max-unused', '0%'], { env });
  assert.match(real.stdout, /removed 1 snapshot/);
  assert.match(real.stdout, /repack \d packs .*keeping 12 blobs in 1 new packs/);
  assert.match(real.stdout, /deleted \d+ packs \([\d.]+ MiB\): freed [\d.]+ MiB/);
  assert.doesNotMatch(real.stdout, /wait for other writers/);

  const [a, b, c] = await Promise.all(locations.map(digests));
  assert.deepEqual(b, a, 'S3 is byte-identical to the local replica');
  assert.deepEqual(c, a, 'SFTP is byte-identical to the local replica');
  assert.match(ok(['check', ...repos, '--read-data'], { env }).stdout, /no errors were found/);
  for (const only of locations) {
    const out = path.join(dir, `restore-${crypto.randomBytes(3).toString('hex')}`);
    ok(['restore', '--repo', only, 'latest', '--target', out], { env });
    for (let i = 0; i < 12; i++) assert.ok(fs.readFileSync(path.join(out, source, `kept${i}`)).equals(seededBytes(`kept${i}`, 200_000)));
    assert.ok(fs.readFileSync(path.join(out, source, 'new')).equals(seededBytes('new', 1 << 20)));
    assert.ok(!fs.existsSync(path.join(out, source, 'gone0')));
  }
  // No marker is left on any replica.
  for (const l of locations) {
    const store = remotes.open(l);
    const left = [];
    for await (const o of store.list('writers')) left.push(o.name);
    await store.close();
    assert.deepEqual(left, [], l);
  }
});

test('a replica away during prune is reported; the next prune brings it in line and keeps what a snapshot made there needs', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const one = path.join(dir, 'one');
  const two = path.join(dir, 'two');
  const both = ['--repo', one, '--repo', two];
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  fs.writeFileSync(path.join(a, 'x'), seededBytes('x', 2 << 20));
  fs.writeFileSync(path.join(b, 'y'), 'y');
  ok(['init', ...both]);
  const first = summaryOf(ok(['backup', ...both, '--json', a]).stdout).snapshotId as string;
  ok(['backup', ...both, b]);
  ok(['forget', ...both, first]);

  // Replica two is away: prune frees x's pack on replica one only, and says so.
  fs.renameSync(two, `${two}.away`);
  const partial = coffer(['prune', ...both]);
  assert.equal(partial.code, 4, partial.stderr);
  assert.match(partial.stderr, new RegExp(`replica ${two} was not reachable and was not pruned`));
  fs.renameSync(`${two}.away`, two);

  // Meanwhile a backup to replica two alone deduplicates against x's pack, which two still has.
  const onTwo = summaryOf(ok(['backup', '--repo', two, '--json', a]).stdout);
  assert.ok((onTwo.bytesAdded as number) < 100_000, 'x was not uploaded again');
  assert.equal(coffer(['check', '--replicas', ...both]).code, 1, 'the replicas differ');

  // Both reachable: the pack the new snapshot needs is rescued and copied back to one; then they match.
  const aligned = summaryOf(ok(['prune', ...both, '--json']).stdout) as { rescued: { packs: number }; reconciled: { copied: number } };
  assert.ok(aligned.rescued.packs >= 1 && aligned.reconciled.copied >= 1, JSON.stringify(aligned));
  assert.match(ok(['check', '--replicas', ...both]).stdout, /all 2 replicas hold the same/);
  assert.match(ok(['check', ...both, '--read-data']).stdout, /no errors were found/);
  const out = path.join(dir, 'restored');
  ok(['restore', '--repo', one, onTwo.snapshotId as string, '--target', out]);
  assert.ok(fs.readFileSync(path.join(out, a, 'x')).equals(seededBytes('x', 2 << 20)));
});

test('a killed backup leaves a marker that blocks nothing; unlock says what it removes; bad options are refused', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`f${i}`, 1 << 20));
  ok(['init', '--repo', repo]);
  const run = cofferAsync(['backup', '--repo', repo, '--limit-upload', '2M', source]);
  const writers = path.join(repo, 'writers');
  const deadline = Date.now() + 60_000;
  while (!(fs.existsSync(writers) && fs.readdirSync(writers).length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  run.child.kill('SIGKILL');
  await run.done;
  assert.equal(fs.readdirSync(writers).length, 1, 'the killed backup left its marker');

  // The marker is of a dead process on this machine: prune is not held back by it.
  const pruned = ok(['prune', '--repo', repo]);
  assert.doesNotMatch(pruned.stdout, /wait for other writers/);
  const unlock = ok(['unlock', '--repo', repo]);
  assert.match(unlock.stdout, /removed: backup on \S+ \(pid \d+, started [^)]+\) in .*: its process is gone/);
  assert.match(unlock.stdout, /removed 1 marker$/m);
  assert.deepEqual(fs.readdirSync(writers), []);
  assert.match(ok(['unlock', '--repo', repo]).stdout, /no markers: nothing to remove/);

  for (const [args, message] of [
    [['--max-unused', '150%'], /--max-unused takes a percentage/],
    [['--max-unused', 'lots'], /--max-unused takes a percentage/],
    [['--max-repack-size', 'big'], /--max-repack-size takes a size/],
    [['--max-unsued', '5%'], /unknown option '--max-unsued'/],
  ] as const) {
    const r = coffer(['prune', '--repo', repo, ...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  assert.match(coffer(['prune', '--repo', path.join(dir, 'nope')]).stderr, /not a Coffer repository/);
});

test('prune removes what killed writes left once it is older than the marker expiry: tmp files on SFTP, incomplete uploads on S3', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const env = remotes.env;
  const sftp = remotes.location('sftp', dir);
  const s3 = remotes.location('s3', dir);
  ok(['init', '--repo', sftp, '--repo', s3], { env });
  // An upload to SFTP that died half-way, and one that is still going; the same on S3 (multipart).
  const sftpRoot = new URL(sftp).pathname;
  fs.mkdirSync(path.join(sftpRoot, 'tmp'), { recursive: true });
  const dead = path.join(sftpRoot, 'tmp', `${'d'.repeat(24)}.tmp`);
  const live = path.join(sftpRoot, 'tmp', `${'e'.repeat(24)}.tmp`);
  fs.writeFileSync(dead, Buffer.alloc(5000));
  fs.writeFileSync(live, Buffer.alloc(7000));
  const threeHoursAgo = new Date(Date.now() - 3 * 3600_000);
  fs.utimesSync(dead, threeHoursAgo, threeHoursAgo);
  const { CreateMultipartUploadCommand, S3Client, UploadPartCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint: remotes.s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: remotes.s3.credentials });
  const prefix = s3.slice(s3.lastIndexOf('/') + 1);
  const uploads: string[] = [];
  for (let i = 0; i < 2; i++) {
    const key = `${prefix}/data/ab/ab${String(i).repeat(62)}`;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: remotes.s3.bucket, Key: key }));
    await client.send(new UploadPartCommand({ Bucket: remotes.s3.bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(1000) }));
    uploads.push(UploadId!);
  }
  client.destroy();
  const uploadDir = (id: string): string => path.join(remotes.s3.directory, remotes.s3.bucket, '._S3rver_uploads', id);
  fs.utimesSync(uploadDir(uploads[0]!), threeHoursAgo, threeHoursAgo);

  const r = summaryOf(ok(['prune', '--repo', sftp, '--repo', s3, '--json'], { env }).stdout) as { cleanedUp: { objects: number; bytes: number } };
  assert.deepEqual(r.cleanedUp, { objects: 2, bytes: 5000 });
  assert.ok(!fs.existsSync(dead) && fs.existsSync(live), 'the old tmp file went, the recent one stayed');
  assert.ok(!fs.existsSync(uploadDir(uploads[0]!)) && fs.existsSync(uploadDir(uploads[1]!)), 'the old upload was aborted, the recent one kept');
});
