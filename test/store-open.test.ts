import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LocalStore } from '../src/store/local.ts';
import { openStore } from '../src/store/open-store.ts';
import { S3Store } from '../src/store/s3.ts';
import { SftpStore } from '../src/store/sftp.ts';
import { StoreError } from '../src/store/store.ts';

const s3 = { env: { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret' } };

describe('openStore', () => {
  it('picks the backend from the location', async () => {
    const local = openStore('./some/repo');
    assert.ok(local instanceof LocalStore);
    assert.equal(local.location, path.resolve('some/repo'));
    const fromUrl = openStore('file:///srv/backup');
    assert.ok(fromUrl instanceof LocalStore);
    assert.equal(fromUrl.location, '/srv/backup');
    const bucket = openStore('s3:https://s3.example.com:9000/bucket/some/prefix/', { s3 });
    assert.ok(bucket instanceof S3Store);
    assert.equal(bucket.location, 's3:https://s3.example.com:9000/bucket/some/prefix');
    await bucket.close();
    const nas = openStore('sftp://backup@nas.local/volume1/coffer');
    assert.ok(nas instanceof SftpStore);
    assert.equal(nas.location, 'sftp://backup@nas.local/volume1/coffer');
  });

  it('refuses unknown schemes without echoing the rest of the location', () => {
    assert.throws(
      () => openStore('gs://bucket/token=abc'),
      (err) => err instanceof StoreError && err.kind === 'permanent' && err.message.includes("'gs:'") && !err.message.includes('token') && !err.message.includes('\n'),
    );
    assert.throws(() => openStore('  '), (err) => err instanceof StoreError && /no repository location/.test(err.message));
  });

  it('passes malformed S3 and SFTP locations on as one-line errors', () => {
    for (const bad of ['s3:bucket', 's3:http://host', 'sftp://host', 'file://remote-host/path']) {
      assert.throws(() => openStore(bad, { s3 }), (err) => err instanceof StoreError && err.kind === 'permanent' && !err.message.includes('\n'), bad);
    }
  });
});
