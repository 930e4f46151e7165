// A repository someone else could write into: decompression bombs, counts that lie, objects far too big
// for what they claim to be, FIFOs and symlinks planted among its folders. Every command stays within
// bounds and answers in one line; a damaged object is skipped with a warning, never a crash.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ByteWriter } from '../src/format/bytes.ts';
import { compressPayload } from '../src/format/compression.ts';
import { BlobType } from '../src/format/pack.ts';
import { S3Store } from '../src/store/s3.ts';
import { coffer, cofferAsync, repoWithSnapshot, tempDir } from './helpers/cli.ts';
import { craftNode, Crafter, zstdBomb } from './helpers/craft.ts';
import { startHostileS3, type HostileS3 } from './helpers/hostile-s3.ts';
import { objectName } from './helpers/names.ts';

function repository(dir: string): string {
  return repoWithSnapshot(dir, { 'a.txt': 'alpha' }).repo;
}

async function withCrafter<T>(repo: string, work: (c: Crafter) => Promise<T>): Promise<T> {
  const crafter = await Crafter.open(repo);
  try {
    return await work(crafter);
  } finally {
    await crafter.close();
  }
}

describe('bombs', () => {
  it('a snapshot that decompresses to 2 GiB is skipped at once, with a warning', async (t) => {
    const repo = repository(tempDir(t));
    const bomb = await zstdBomb(2 ** 31);
    const id = await withCrafter(repo, (c) => c.rawSnapshot(Buffer.alloc(0), bomb));
    const started = performance.now();
    const r = coffer(['snapshots', '--repo', repo]);
    t.diagnostic(`snapshots took ${Math.round(performance.now() - started)} ms`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`skipping snapshots/${id}: snapshots/${id}: decompresses to more than the 16777216 bytes it may have`));
    assert.match(r.stdout, /^1 snapshots?$/m);
  });

  it('a blob decompresses to no more than its index entry says; an entry of 0 bytes for a big blob is refused', async (t) => {
    const repo = repository(tempDir(t));
    const bomb = await zstdBomb(256 * 2 ** 20);
    // Each in a snapshot (and index file) of its own: a damaged entry makes its whole index file skipped.
    const small = await withCrafter(repo, async (c) => {
      const chunk = c.rawBlob(BlobType.Data, Buffer.alloc(32, 7), { flag: 1, body: bomb.subarray(1) }, bomb.length);
      return c.snapshot(c.tree([craftNode.file('small-they-say', [chunk], bomb.length)]));
    });
    const zero = await withCrafter(repo, async (c) => {
      const chunk = c.rawBlob(BlobType.Data, Buffer.alloc(32, 8), { flag: 1, body: bomb.subarray(1) }, 0);
      return c.snapshot(c.tree([craftNode.file('empty-they-say', [chunk], 0)]));
    });
    // 0.1.0 put no cap at all on a blob whose index entry said 0 bytes.
    const z = coffer(['dump', '--repo', repo, zero, '/empty-they-say']);
    assert.equal(z.code, 1);
    assert.match(z.stderr, /skipping index\/[0-9a-f]{64}: .*a blob of 0 bytes cannot take \d+ bytes sealed/);
    const r = coffer(['dump', '--repo', repo, small, '/small-they-say']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^coffer: blob 0707070707070707 in pack data/.*: decompresses to more than the ${bomb.length} bytes it may have$`, 'm'));
  });

  it('an index file that declares millions of entries in a few kilobytes is skipped', async (t) => {
    const repo = repository(tempDir(t));
    // 3 million all-zero blob entries compress to a few kilobytes.
    const plain = new ByteWriter().u8(1).uint(1).bytes(Buffer.alloc(64)).uint(3_000_000).bytes(Buffer.alloc(3_000_000 * 36)).finish();
    const framed = compressPayload(plain);
    assert.ok(framed.length < 64 * 1024, `${framed.length} bytes`);
    const name = await withCrafter(repo, (c) => c.rawIndex(framed));
    // Without compression, the count alone gives it away before anything is allocated.
    const short = await withCrafter(repo, (c) => c.rawIndex(Buffer.concat([Buffer.of(0), new ByteWriter().u8(1).uint(1).bytes(Buffer.alloc(64)).uint(3_000_000).finish()])));
    const r = coffer(['ls', '--repo', repo, 'latest']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`skipping ${name}: ${name}: decompresses to more than`));
    assert.match(r.stderr, new RegExp(`skipping ${short}: malformed ${short}: declares 3000000 entries, more than the \\d+ bytes left can hold`));
  });
});

describe('oversized objects', () => {
  it('a 2.3 GB sparse config or index file: one-line refusal or a warning, never a crash', async (t) => {
    const dir = tempDir(t);
    const repo = repository(dir);
    const index = path.join(repo, 'index', fs.readdirSync(path.join(repo, 'index'))[0]!);
    fs.truncateSync(index, 2.3e9);
    // Without its only index file the snapshot's trees cannot be found: a clear error, not an abort.
    const withIndex = coffer(['ls', '--repo', repo, 'latest']);
    assert.equal(withIndex.code, 1, withIndex.stderr);
    assert.match(withIndex.stderr, /^coffer: blob [0-9a-f]{64} is not in the index; run coffer check$/m);
    assert.match(withIndex.stderr, /ignoring "index\/[0-9a-f]{64}" in .*: 2300000000 bytes, more than such an object may have/);
    const check = coffer(['check', '--repo', repo]);
    assert.notEqual(check.code, 134, check.stderr);
    assert.match(check.stderr, /ignoring "index\//);

    fs.truncateSync(path.join(repo, 'config'), 2.3e9);
    const r = coffer(['snapshots', '--repo', repo]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^coffer: reading config from .*: the object has 2300000000 bytes, more than such an object may have \(65536\); it was not written by Coffer\n$/);
  });

  describe('a hostile S3 endpoint', () => {
    let s3: HostileS3;
    before(async () => {
      s3 = await startHostileS3({ ignoreRange: true });
    });
    after(() => s3.stop());

    it('answering GET config with 1.5 GB is refused before the body is read', async () => {
      s3.objects.set('big/config', { size: 1.5e9 });
      const r = await cofferAsync(['snapshots', '--repo', s3.location('big')], { env: s3.env }).done;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^coffer: reading config from .*: the object has 1500000000 bytes, more than such an object may have/);
    });

    it('answering a range request with a whole huge object: only the range is kept', async (t) => {
      const pack = objectName('data', 'huge');
      s3.objects.set(pack, { size: 3 * 2 ** 30, fill: 9 });
      const store = new S3Store(s3.location(), { env: s3.env });
      try {
        const before = s3.bytesServed();
        assert.deepEqual(await store.get(pack, { offset: 5, length: 10 }), Buffer.alloc(10, 9));
        // 0.1.0 read all 3 GiB (RSS 6.3 GB) to keep 10 bytes; now the connection is dropped once the range is in.
        const served = s3.bytesServed() - before;
        t.diagnostic(`the endpoint got to send ${served} bytes`);
        assert.ok(served < 64 * 2 ** 20, `${served} bytes were read`);
      } finally {
        await store.close();
      }
    });
  });

  it('a listing that never ends is refused', async () => {
    const endless = await startHostileS3({ endlessListing: true, objects: new Map([[objectName('index', 1), Buffer.from('x')]]) });
    const store = new S3Store(endless.location(), { env: endless.env });
    try {
      await assert.rejects(
        (async () => {
          for await (const _ of store.list('index'));
        })(),
        /a continuation token it gave before; the listing would never end/,
      );
    } finally {
      await store.close();
      await endless.stop();
    }
  });
});

describe('planted files', () => {
  it('a config that is a FIFO is refused at once instead of hanging', async (t) => {
    const dir = tempDir(t);
    const repo = repository(dir);
    fs.rmSync(path.join(repo, 'config'));
    execFileSync('mkfifo', [path.join(repo, 'config')]);
    const r = await cofferAsync(['snapshots', '--repo', repo]).done;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^coffer: reading config from .*: the object is not a regular file/);
  });

  it('a repository folder that is a symlink is never written through', async (t) => {
    const dir = tempDir(t);
    const repo = repository(dir);
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.renameSync(path.join(repo, 'snapshots'), path.join(elsewhere, 'snapshots'));
    fs.symlinkSync(path.join(elsewhere, 'snapshots'), path.join(repo, 'snapshots'));
    const before = fs.readdirSync(path.join(elsewhere, 'snapshots'));
    const source = path.join(dir, 'source');
    const r = coffer(['backup', '--repo', repo, source]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /snapshots is a symbolic link; a repository folder must be a directory of its own/);
    assert.deepEqual(fs.readdirSync(path.join(elsewhere, 'snapshots')), before, 'nothing was written through the link');
  });

  it('foreign files in data/ are reported once, and the backup still exits 0', async (t) => {
    const dir = tempDir(t);
    const repo = repository(dir);
    fs.writeFileSync(path.join(repo, 'data', 'README.txt'), 'not a pack');
    fs.mkdirSync(path.join(repo, 'data', 'zz'));
    fs.writeFileSync(path.join(repo, 'data', 'zz', 'notes'), 'nor this');
    const fake = path.join(repo, objectName('data', 'garbage'));
    fs.mkdirSync(path.dirname(fake), { recursive: true });
    fs.writeFileSync(fake, 'garbage under a pack name');
    const r = coffer(['backup', '--repo', repo, path.join(dir, 'source')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.match(/ignoring "data\/README\.txt"/g)?.length, 1, r.stderr);
    assert.match(r.stderr, /ignoring "data\/zz" in .*: a directory that is not part of the repository layout/);
    assert.match(r.stderr, /skipping data\/[0-9a-f]{2}\/[0-9a-f]{64}: it is not a pack that can be read .*coffer check/);
    assert.doesNotMatch(r.stderr, /could not be backed up/);
  });
});
