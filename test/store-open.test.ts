import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { LazyStore } from '../src/store/lazy.ts';
import { LocalStore } from '../src/store/local.ts';
import { openStore } from '../src/store/open-store.ts';
import { StoreError } from '../src/store/store.ts';

const s3 = { env: { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret' } };
// Without credentials the AWS SDK's chain would end by asking the EC2 instance metadata service (a
// link-local address, not loopback); tests never do. The child process below inherits this.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

describe('openStore', () => {
  it('picks the backend from the location', async () => {
    const local = openStore('./some/repo');
    assert.ok(local instanceof LocalStore);
    assert.equal(local.location, path.resolve('some/repo'));
    const fromUrl = openStore('file:///srv/backup');
    assert.ok(fromUrl instanceof LocalStore);
    assert.equal(fromUrl.location, '/srv/backup');
    // Remote stores load their backend on first use; their location is the backend's from the start.
    const bucket = openStore('s3:https://s3.example.com:9000/bucket/some/prefix/', { s3 });
    assert.ok(bucket instanceof LazyStore);
    assert.equal(bucket.location, 's3:https://s3.example.com:9000/bucket/some/prefix');
    await bucket.close();
    const nas = openStore('sftp://backup@nas.local/volume1/coffer');
    assert.ok(nas instanceof LazyStore);
    assert.equal(nas.location, 'sftp://backup@nas.local/volume1/coffer');
    assert.equal(openStore('sftp://backup@nas.local:2222/~/coffer/').location, 'sftp://backup@nas.local:2222/~/coffer');
  });

  it('reports missing S3 credentials from the first call on the store, and from every later one', async () => {
    const store = openStore('s3:http://127.0.0.1:9/bucket', { s3: { env: {} } });
    const first = await store.stat('config').catch((err: unknown) => err);
    assert.ok(first instanceof StoreError && first.kind === 'denied' && first.message.includes(store.location), String(first));
    await assert.rejects(store.get('config'), (err) => err === first);
    await store.close();
  });

  // The resolve hook sees every module the child resolves, by import or require, so the check is exact
  // (require.cache misses ES modules, process.moduleLoadList lists only Node's own). Resolving a
  // package is what loading it starts with; the later steps show that the hook does see the SDKs.
  it('loads neither the AWS SDK nor ssh2 until an S3 or SFTP store is used', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-open-store-'));
    const script = `
      import { registerHooks } from 'node:module';
      const packages = new Set();
      registerHooks({
        resolve(specifier, context, next) {
          const result = next(specifier, context);
          const name = new RegExp('/node_modules/((?:@[^/]+/)?[^/]+)/').exec(result.url)?.[1];
          if (name) packages.add(name);
          return result;
        },
      });
      const loaded = () => [...packages].filter((p) => p.startsWith('@aws-sdk/') || p.startsWith('ssh2')).sort();
      const { openStore } = await import(${JSON.stringify(new URL('../src/store/open-store.ts', import.meta.url).href)});
      const steps = {};
      const local = openStore(${JSON.stringify(dir)});
      await local.put('config', new Uint8Array(1));
      await local.close();
      const bucket = openStore('s3:http://127.0.0.1:9/bucket', { s3: { env: {} } });
      const nas = openStore('sftp://backup@127.0.0.1:9/srv', { sftp: { env: { COFFER_SFTP_KEY: '/nonexistent' } } });
      steps.opened = loaded();
      await bucket.stat('config').catch(() => undefined);
      steps.s3Used = loaded();
      await nas.stat('config').catch(() => undefined);
      steps.sftpUsed = loaded();
      console.log(JSON.stringify(steps));
    `;
    try {
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
      const steps = JSON.parse(stdout) as Record<string, string[]>;
      assert.deepEqual(steps.opened, []);
      assert.ok(steps.s3Used!.includes('@aws-sdk/client-s3') && !steps.s3Used!.some((p) => p.startsWith('ssh2')), String(steps.s3Used));
      assert.ok(steps.sftpUsed!.includes('ssh2-sftp-client') && steps.sftpUsed!.includes('ssh2'), String(steps.sftpUsed));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses unknown schemes without echoing the rest of the location', () => {
    assert.throws(
      () => openStore('gs://bucket/token=abc'),
      (err) => err instanceof StoreError && err.kind === 'permanent' && err.message.includes("'gs:'") && !err.message.includes('token') && !err.message.includes('\n'),
    );
    assert.throws(() => openStore('  '), (err) => err instanceof StoreError && /no repository location/.test(err.message));
  });

  it('passes malformed S3 and SFTP locations on as one-line errors', () => {
    for (const bad of ['s3:bucket', 's3:http://host', 'sftp://host', 'file://remote-host/path', 's3:http://host/b%ff', 'sftp://us%fe@host/p', 'sftp://host/%c3']) {
      assert.throws(() => openStore(bad, { s3 }), (err) => err instanceof StoreError && err.kind === 'permanent' && !err.message.includes('\n'), bad);
    }
  });
});
