// Requests a backup makes to a remote repository, counted by a proxy in front of s3rver: every 20 ms
// of a network round trip counts (issue 12's remote-latency targets).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ok, tempDir } from './helpers/cli.ts';
import { startLatencyProxy } from './helpers/latency-proxy.ts';
import { startS3Server } from './helpers/s3-server.ts';

test('a backup to one remote destination lists each folder of the repository once', async (t) => {
  const s3 = await startS3Server('requests');
  t.after(() => s3.stop());
  const proxy = await startLatencyProxy(s3.endpoint, 0);
  t.after(() => proxy.close());
  const env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(source, `f${i}`), `content ${i}\n`.repeat(100 * i));
  const repo = `s3:${proxy.endpoint}/${s3.bucket}/repo`;
  ok(['init', '--repo', repo], { env });
  ok(['backup', '--repo', repo, source], { env });
  for (const backup of ['no-change', 'changed']) {
    if (backup === 'changed') fs.writeFileSync(path.join(source, 'new'), 'new file');
    proxy.reset();
    ok(['backup', '--repo', repo, source], { env });
    const listings = new Map<string, number>();
    for (const r of proxy.requests()) {
      const prefix = new URL(r.url, 'http://x').searchParams.get('prefix');
      if (r.method === 'GET' && prefix !== null) listings.set(prefix, (listings.get(prefix) ?? 0) + 1);
    }
    // keys/, deletions/, index/ and snapshots/ as the repository opens and finds the parent; data/ to
    // adopt the packs of an interrupted run. A lone destination has no replica to catch up with.
    const expected = { 'repo/keys/': 1, 'repo/deletions/': 1, 'repo/index/': 1, 'repo/data/': 1, 'repo/snapshots/': 1 };
    assert.deepEqual(Object.fromEntries(listings), expected, `${backup} backup: listings by prefix`);
  }
});
