// Jobs that survive anything: a 2 GiB backup to a local disk and to S3 is killed with SIGKILL at random
// points. After each kill the repository checks clean on both destinations; the last run completes one
// snapshot, and nothing that was durable before a kill is uploaded again (no blob stored twice).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BlobType } from '../src/format/pack.ts';
import { Repository } from '../src/repo/repository.ts';
import { readPackHeader } from '../src/repo/pack-reader.ts';
import { LocalStore } from '../src/store/local.ts';
import { S3Store } from '../src/store/s3.ts';
import type { Store } from '../src/store/store.ts';
import { cofferAsync, HEAVY, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { seededBytes } from './helpers/tree.ts';

const FILES = 16;
const FILE_SIZE = 128 << 20;
const PACK_SIZE = 16 << 20;
/** Kill points in ms after start; fixed so a failure can be replayed. */
const KILL_AFTER_MS = [1800, 2600, 1500, 3400, 2200, 2900];

let s3: S3Server;
before(async () => {
  s3 = await startS3Server('resume');
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
});
after(() => s3?.stop());

/** For each data blob stored more than once on a store: the bytes of the extra copies. */
async function duplicateBytes(store: Store, dataKey: Buffer): Promise<number> {
  const seen = new Set<string>();
  let extra = 0;
  for await (const o of store.list('data')) {
    for (const e of (await readPackHeader(store, o.name, o.size, dataKey)).entries) {
      if (e.type !== BlobType.Data) continue;
      const key = e.id.toString('hex');
      if (seen.has(key)) extra += e.length;
      seen.add(key);
    }
  }
  return extra;
}

test('SIGKILL at random points during a 2 GiB backup to local and S3: check passes each time, the resumed run re-uploads nothing durable', { timeout: 600_000, ...HEAVY }, async (t) => {
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(src, `photo-${i}.raw`), seededBytes(`resume ${i}`, FILE_SIZE));
  const local = path.join(dir, 'local');
  const bucket = `s3:${s3.endpoint}/${s3.bucket}/repo`;
  const repos = ['--repo', local, '--repo', bucket];
  ok(['init', ...repos]);

  let killed = 0;
  for (const delay of KILL_AFTER_MS) {
    const run = cofferAsync(['backup', ...repos, src]);
    const finished = await Promise.race([run.done.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), delay))]);
    if (finished) break;
    run.child.kill('SIGKILL');
    await run.done;
    killed++;
    for (const location of [local, bucket]) {
      assert.match(ok(['check', '--repo', location]).stdout, /no errors were found/, `check of ${location} after kill ${killed}`);
    }
  }
  assert.ok(killed >= 3, `the backup was killed ${killed} times before it could finish`);

  const summary = summaryOf(ok(['backup', ...repos, '--json', src]).stdout);
  assert.deepEqual((summary.destinations as { committed: boolean }[]).map((d) => d.committed), [true, true]);
  assert.ok((summary.adoptedPacks as number) >= 0);

  const stores: Store[] = [new LocalStore(local), new S3Store(bucket)];
  const repo = await Repository.open(stores, PASSWORD);
  const leftovers = fs.existsSync(path.join(local, 'tmp')) ? fs.readdirSync(path.join(local, 'tmp')).map((f) => fs.statSync(path.join(local, 'tmp', f)).size) : [];
  for (const store of stores) {
    const extra = await duplicateBytes(store, repo.keys.dataKey);
    t.diagnostic(`${store.location}: ${extra} bytes stored twice after ${killed} kills`);
    assert.ok(extra < PACK_SIZE, `${store.location} holds ${extra} bytes twice: less than one pack may be re-uploaded`);
  }
  t.diagnostic(`partial uploads left in ${local}/tmp by the kills: ${leftovers.length} files, ${leftovers.reduce((a, b) => a + b, 0)} bytes`);
  await repo.close();

  assert.match(ok(['check', ...repos, '--read-data-subset', '25%']).stdout, /no errors were found/);
  assert.match(ok(['check', '--replicas', ...repos]).stdout, /all 2 replicas hold the same/);
  const out = path.join(dir, 'out');
  ok(['restore', '--repo', bucket, 'latest', '--target', out, '--include', 'photo-7.raw']);
  assert.ok(fs.readFileSync(path.join(out, src, 'photo-7.raw')).equals(fs.readFileSync(path.join(src, 'photo-7.raw'))));
  const status = JSON.parse(ok(['status', '--json']).stdout) as { destinations: { lastSuccess?: { jobId: number } }[] };
  assert.deepEqual(status.destinations.map((d) => d.lastSuccess?.jobId), [1, 1], 'one job, resumed after every kill');
});
